"""The student on spconv: forward/backward on CPU, gradient flow, overfitting one frame,
learning an unseen class from pseudo labels alone, and swapping the vocabulary."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zeroseg3d.cli import main
from zeroseg3d.datasets.pipeline import SampleBuilder, collate
from zeroseg3d.datasets.semantickitti import SemanticKITTI
from zeroseg3d.engine.data import hide_unseen
from zeroseg3d.losses.config import LossConfig
from zeroseg3d.losses.method import MethodCriterion
from zeroseg3d.models.config import ModelConfig
from zeroseg3d.models.segmentor import create_student

pytest.importorskip("spconv")


@pytest.fixture(scope="module")
def world_frame(tmp_path_factory):
    root = tmp_path_factory.mktemp("student_world")
    main(["world", "generate", "--out", str(root), "--sequences", "1", "--frames", "1", "--seed", "11",
          "--workers", "1"])
    dataset = SemanticKITTI.from_root(root, split="all")
    return dataset, dataset[0]


def text_matrix(num_classes, dim=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(num_classes, dim, generator=generator), dim=-1)


def test_the_config_names_exactly_the_backbone_variants():
    from zeroseg3d.models.backbone import VARIANTS
    from zeroseg3d.models.config import BACKBONE_VARIANTS

    assert tuple(VARIANTS) == BACKBONE_VARIANTS


def test_forward_backward_and_gradient_flow(world_frame):
    dataset, frame = world_frame
    batch = collate([SampleBuilder(0.2)(frame)])
    torch.manual_seed(0)
    model = create_student(ModelConfig(backbone="small"), 32)
    text = text_matrix(dataset.vocabulary.num_classes).requires_grad_(False)
    out = model(batch, text)
    assert out["logits"].shape == (frame.num_points, dataset.vocabulary.num_classes)
    embeddings = model.embed_voxels(batch)
    norms = embeddings.norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms))
    # the logits are the scaled cosines of those unit embeddings (computed without them)
    explicit = (model.logit_scale.exp() * embeddings @ text.T)[batch["point_to_voxel"]]
    torch.testing.assert_close(out["logits"], explicit, atol=1e-4, rtol=1e-4)
    # the points of a voxel share its logits
    p2v = batch["point_to_voxel"]
    first = torch.zeros(len(norms), dtype=torch.long).scatter_(0, p2v.flip(0), torch.arange(len(p2v)).flip(0))
    torch.testing.assert_close(out["logits"], out["logits"][first[p2v]])
    loss = F.cross_entropy(out["logits"], torch.from_numpy(np.clip(frame.labels, 0, None)))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)
    assert model.backbone.stem[0].weight.grad.abs().sum() > 0


def _overfit(model, batch, text, criterion, steps, lr=0.01):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        out = model(batch, text, criterion)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        return model(batch, text)["logits"].argmax(1).numpy()


def _flat_checkerboard():
    """A flat 20 x 20 m ground 30-50 m ahead whose 2 m squares differ only in intensity (0.25
    against 0.35, as asphalt against a parking strip): geometry tells nothing."""
    from zeroseg3d.geometry.voxelize import voxelize

    x, y = (a.ravel() for a in np.meshgrid(np.arange(30, 50, 0.1), np.arange(-10, 10, 0.1), indexing="ij"))
    label = ((np.floor(x / 2) + np.floor(y / 2)) % 2).astype(np.int64)
    intensity = np.where(label == 1, 0.35, 0.25) + np.random.default_rng(0).normal(0, 0.01, len(x))
    points = np.stack([x, y, np.zeros_like(x), intensity], 1).astype(np.float32)
    voxels = voxelize(points[:, :3], 0.2)
    coords = np.concatenate([np.zeros((len(voxels.coords), 1), np.int32), voxels.coords], 1)
    return {"points": torch.from_numpy(points), "labels": torch.from_numpy(label),
            "offsets": torch.tensor([0, len(points)]), "voxel_coords": torch.from_numpy(coords),
            "point_to_voxel": torch.from_numpy(voxels.point_to_voxel)}


@pytest.mark.parametrize("input_norm", [True, False])
def test_the_input_norm_lets_the_student_see_intensity(input_norm):
    batch = _flat_checkerboard()
    labels = batch["labels"]
    torch.manual_seed(0)
    model = create_student(ModelConfig(input_norm=input_norm), 32)
    criterion = lambda out, batch: {"loss": F.cross_entropy(out["logits"], labels)}  # noqa: E731
    accuracy = (_overfit(model, batch, text_matrix(2), criterion, steps=40) == labels.numpy()).mean()
    # coordinates of tens of metres drown an intensity difference of 0.1 unless each input
    # channel is standardised: without it the student stays at chance
    if input_norm:
        assert accuracy > 0.9, accuracy
    else:
        assert accuracy < 0.6, accuracy


def test_a_student_of_x_y_z_alone_reads_no_intensity():
    batch = _flat_checkerboard()
    blank = {**batch, "points": batch["points"] * torch.tensor([1.0, 1.0, 1.0, 0.0])}
    text = text_matrix(2)
    for channels in (3, 4):
        torch.manual_seed(0)
        model = create_student(ModelConfig(in_channels=channels), 32).eval()
        assert model.input_norm.num_features == channels and model.backbone.stem[0].in_channels == channels
        with torch.no_grad():
            logits, without = model(batch, text)["logits"], model(blank, text)["logits"]
        # x, y, z alone: the same logits to the bit whatever the intensity; with it, others
        assert torch.equal(logits, without) == (channels == 3)


def test_a_scan_without_intensity_is_given_the_training_mean_within_its_batch():
    batch = _flat_checkerboard()
    n = len(batch["points"])
    blank = batch["points"].clone()
    blank[:, 3] = 0
    given = batch["points"].clone()
    given[:, 3] = 0.3
    coords = batch["voxel_coords"]
    two = {"points": torch.cat([batch["points"], blank]), "offsets": torch.tensor([0, n, 2 * n]),
           "voxel_coords": torch.cat([coords, torch.cat([torch.ones_like(coords[:, :1]), coords[:, 1:]], 1)]),
           "point_to_voxel": torch.cat([batch["point_to_voxel"], batch["point_to_voxel"] + len(coords)])}
    torch.manual_seed(0)
    model = create_student(ModelConfig(), 32).eval()
    model.input_norm.running_mean[3] = 0.3
    text = text_matrix(2)
    with torch.no_grad():
        logits = model(two, text)["logits"]
        alone = model(batch, text)["logits"]
        as_given = model({**batch, "points": given}, text)["logits"]
    # the scan with intensity as alone; the one without as if its intensity were the mean
    torch.testing.assert_close(logits[:n], alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logits[n:], as_given, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(logits[n:], logits[:n])


def _every(frame, n):
    """Every n-th point of ``frame``: the same scene, classes and voxels mostly, 1/n of the
    per-point work."""
    from dataclasses import replace

    keep = slice(None, None, n)
    return replace(frame, points=frame.points[keep], labels=frame.labels[keep], raw_labels=frame.raw_labels[keep],
                   instances=frame.instances[keep])


def test_overfits_seen_classes_and_learns_an_unseen_class_from_pseudo_labels(world_frame):
    dataset, frame = world_frame
    # a quarter of the points (14,337 of the frame's 23,431 voxels): 70 steps give 0.979 seen
    # accuracy and a truck IoU of 0.917, all the points 0.988 and 0.902 after 80 steps, in half the time
    frame = _every(frame, 4)
    vocab = dataset.vocabulary
    split = vocab.split(unseen=["truck", "motorcycle", "bicyclist", "traffic-sign"])
    sample = SampleBuilder(0.2)(frame)
    truth = sample.labels.copy()
    sample.labels = hide_unseen(truth, split, vocab.num_classes)
    # perfect teacher labels on the points of one unseen class (car-sized and common): truck
    truck = vocab.index("truck")
    assert (truth == truck).sum() > 50, "the fixture frame must contain a truck"
    teacher_label = np.where(truth == truck, truck, -1)
    sample.point_extras = {"teacher_label": teacher_label, "teacher_conf": np.ones(len(truth), np.float32)}
    batch = collate([sample])
    seen = torch.zeros(vocab.num_classes, dtype=torch.bool)
    seen[list(split.seen)] = True
    # the teacher labels every truck point here, so a pseudo label counts as one 3D label (the
    # default weight of 30 is for real teachers, which label about 0.1% of the points)
    criterion = MethodCriterion(LossConfig(mcfa_global=False, mcfa_local=False, pseudo_weight=1.0), seen, ~seen)
    torch.manual_seed(0)
    model = create_student(ModelConfig(backbone="small"), 32)
    predicted = _overfit(model, batch, text_matrix(vocab.num_classes), criterion, steps=70)
    seen_points = np.isin(truth, split.seen)
    accuracy = (predicted[seen_points] == truth[seen_points]).mean()
    assert accuracy > 0.95, accuracy
    on_truck = truth == truck
    iou = (on_truck & (predicted == truck)).sum() / (on_truck | (predicted == truck)).sum()
    assert iou > 0.8, iou


def test_vocabulary_swap_changes_the_predicted_classes(world_frame):
    dataset, frame = world_frame
    frame = _every(frame, 4)
    vocab = dataset.vocabulary
    batch = collate([SampleBuilder(0.2)(frame)])
    text = text_matrix(vocab.num_classes)
    labels = torch.from_numpy(frame.labels)
    torch.manual_seed(0)
    model = create_student(ModelConfig(backbone="small"), 32)
    criterion = lambda out, batch: {"loss": F.cross_entropy(out["logits"], labels.clamp(min=0))}  # noqa: E731
    _overfit(model, batch, text, criterion, steps=20)
    with torch.no_grad():  # one forward pass; both vocabularies classify the same embeddings
        embeddings = model.embed(batch)
    scale = model.logit_scale.exp()
    predicted = (scale * embeddings @ text.T).argmax(1).numpy()
    road, sidewalk = vocab.index("road"), vocab.index("sidewalk")
    assert (predicted == road).sum() > 1000
    # a new vocabulary without "road" (and with one new name) at inference: no retraining
    keep = [c for c in range(vocab.num_classes) if c != road]
    new_text = torch.cat([text[keep], text_matrix(1, seed=5)])
    swapped = (scale * embeddings @ new_text.T).argmax(1).numpy()
    with torch.no_grad():  # the model's own forward takes any text matrix
        assert model(batch, new_text)["logits"].shape == (frame.num_points, len(keep) + 1)
    assert set(np.unique(swapped)) <= set(range(len(keep) + 1))
    old_class = np.where(swapped < len(keep), np.array(keep + [-1])[swapped], -1)
    assert not (old_class == road).any()
    # argmax over fewer columns plus one new one: a point either keeps its class or takes the
    # new name; only former road points move elsewhere
    others = (predicted != road) & (swapped < len(keep))
    np.testing.assert_array_equal(old_class[others], predicted[others])
    assert (old_class[predicted == road] != road).all()
    assert sidewalk in old_class


def test_the_student_factory_loads_weights_strictly(world_frame):
    dataset, frame = world_frame
    batch = collate([SampleBuilder(0.2)(frame)])
    text = text_matrix(dataset.vocabulary.num_classes)
    torch.manual_seed(0)
    trained = create_student(ModelConfig(backbone="small"), 32).eval()
    copy = create_student(ModelConfig(backbone="small"), 32, weights=trained.state_dict()).eval()
    with torch.no_grad():
        torch.testing.assert_close(copy(batch, text)["logits"], trained(batch, text)["logits"])
    weights = trained.state_dict()
    with pytest.raises(ValueError, match="scan.pt do not fit the backbone config .*missing"):
        create_student(ModelConfig(backbone="small"), 32, weights={k: v for k, v in list(weights.items())[1:]},
                       where="scan.pt")
    with pytest.raises(ValueError, match="do not fit the backbone config"):   # another embedding size
        create_student(ModelConfig(backbone="small"), 16, weights=weights)


@pytest.mark.parametrize("hidden", [0, 16])
def test_logits_and_pair_embeddings_match_the_explicit_unit_embeddings(world_frame, hidden):
    dataset, frame = world_frame
    batch = collate([SampleBuilder(0.2)(frame)])
    batch["pair_point"] = torch.arange(0, frame.num_points, 7)
    torch.manual_seed(0)
    model = create_student(ModelConfig(backbone="small", head_hidden=hidden), 32)
    with torch.no_grad():   # a bias far from zero: the norm's cross term matters
        (model.head[-1] if hidden else model.head).bias.normal_()
    text = text_matrix(dataset.vocabulary.num_classes)
    seen = {}
    model.eval()   # batch norms with running statistics: the same features in both passes
    with torch.no_grad():
        embeddings = model.embed_voxels(batch)
        out = model(batch, text)
    p2v = batch["point_to_voxel"]
    torch.testing.assert_close(out["logits"], (model.logit_scale.exp() * embeddings @ text.T)[p2v],
                               atol=1e-4, rtol=1e-4)
    model.train()
    for module in model.modules():   # training mode, but batch norms still on running statistics
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    model(batch, text, criterion=lambda out, b: seen.update(out) or {"loss": out["logits"].sum()})
    torch.testing.assert_close(seen["pair_embeddings"], embeddings[p2v[batch["pair_point"]]], atol=1e-5, rtol=1e-5)
