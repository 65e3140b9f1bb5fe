"""Each loss on hand-made tensors with known values."""

import math

import pytest
import torch
import torch.nn.functional as F

from zeroseg3d.errors import ConfigError
from zeroseg3d.losses.config import LossConfig
from zeroseg3d.losses.contrastive import info_nce
from zeroseg3d.losses.cross_entropy import masked_cross_entropy, pseudo_label_mask, seen_mask
from zeroseg3d.losses.mcfa import global_loss, group_means, local_loss
from zeroseg3d.losses.method import MethodCriterion


def test_info_nce_closed_form_for_aligned_orthogonal_pairs():
    # n orthonormal pairs: positive cosine 1, negatives 0 -> loss = log(1 + (n-1) e^{-1/tau})
    n, tau = 4, 0.1
    a = torch.eye(n)
    loss = info_nce(a, a.clone(), tau)
    expected = math.log(1 + (n - 1) * math.exp(-1 / tau))
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert loss.item() < 1e-3  # near its minimum
    # swapped partners are far from the minimum
    assert info_nce(a, a.flip(0), tau).item() > 5
    assert info_nce(a[:1], a[:1], tau).item() == 0.0


def test_group_means_are_the_means():
    values = torch.tensor([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0]])
    ids, means = group_means(values, torch.tensor([7, 2, 7]))
    assert ids.tolist() == [2, 7]
    torch.testing.assert_close(means, torch.tensor([[3.0, 2.0], [3.0, 2.5]]))


def one_tap(rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Taps that read row ``rows[i]`` whole for pair i."""
    taps = torch.tensor(rows)[:, None].repeat(1, 4)
    return taps, torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(len(rows), 1)


def test_global_prototypes_and_loss():
    # two classes; student embeddings equal the teacher features -> prototypes align
    patches = torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    taps, weights = one_tap([0, 0, 1, 1, 2])
    teacher = patches[[0, 0, 1, 1, 2]]
    classes = torch.tensor([0, 0, 1, 1, -1])
    aligned = global_loss(teacher.clone(), taps, weights, patches, classes, 0.1)
    assert aligned.item() == pytest.approx(math.log(1 + math.exp(-10)), abs=1e-6)
    crossed = global_loss(teacher.flip(1), taps, weights, patches, classes, 0.1)
    assert crossed.item() > 5


def test_global_teacher_prototypes_mix_the_taps():
    # class 0: one pair half row 0 half row 1, one pair all row 2: mean (0.25, 0.25, 0.5);
    # class 1: a quarter of each of rows 0-2 and of row 3
    patches = torch.eye(4)
    taps = torch.tensor([[0, 1, 0, 1], [2, 2, 2, 2], [0, 1, 2, 3]])
    weights = torch.tensor([[0.5, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    classes = torch.tensor([0, 0, 1])
    student = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    expected = info_nce(torch.tensor([[0.5, 0.0, 0.5, 0.0], [0.0, 0.0, 0.0, 1.0]]),
                        torch.tensor([[0.25, 0.25, 0.5, 0.0], [0.25, 0.25, 0.25, 0.25]]), 0.1)
    loss = global_loss(student, taps, weights, patches, classes, 0.1)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_global_teacher_prototypes_stay_float32_under_float16_autocast():
    # 300 pairs per class of features near 1000: their sums overflow float16 (max 65504)
    torch.manual_seed(0)
    patches = 1000 + torch.randn(6, 8)
    taps, weights = torch.randint(0, 6, (600, 4)), torch.full((600, 4), 0.25)
    classes, student = torch.arange(600) % 2, torch.randn(600, 8)
    expected = global_loss(student, taps, weights, patches, classes, 0.1)
    with torch.autocast("cpu", dtype=torch.float16):
        loss = global_loss(student, taps, weights, patches, classes, 0.1)
    assert torch.isfinite(loss) and loss.item() == pytest.approx(expected.item(), rel=1e-2)


def test_local_loss_pools_points_per_patch():
    patch_features = torch.eye(3)
    # points of patch 0 average to e0, of patch 2 to e2 (the point in patch 2 is e2 itself)
    points = torch.tensor([[1.0, 0.2, 0.0], [1.0, -0.2, 0.0], [0.0, 0.0, 1.0]])
    loss = local_loss(points, torch.tensor([0, 0, 2]), patch_features, 0.1, max_patches=10)
    expected = info_nce(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), patch_features[[0, 2]], 0.1)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # sampling at most one patch leaves nothing to contrast
    assert local_loss(points, torch.tensor([0, 0, 2]), patch_features, 0.1, max_patches=1).item() == 0.0


def test_seen_and_pseudo_selection():
    logits = torch.zeros(6, 3, requires_grad=True)
    labels = torch.tensor([0, 1, -1, -1, -1, -1])
    seen = torch.tensor([True, True, False])
    unseen = ~seen
    # only the seen-labelled points count: uniform logits -> log(3)
    total, count = masked_cross_entropy(logits, labels, seen_mask(labels, seen))
    assert count == 2 and total.item() == pytest.approx(2 * math.log(3))
    pseudo = torch.tensor([2, 2, 2, 0, 2, 2])
    confidence = torch.tensor([0.9, 0.9, 0.9, 0.9, 0.4, 0.6])
    mask = pseudo_label_mask(labels, pseudo, confidence, unseen, threshold=0.5)
    # point 2 (unlabelled, unseen class, confident) and point 5; not 3 (seen class) nor 4 (weak)
    assert mask.tolist() == [False, False, True, False, False, True]
    loss, count = masked_cross_entropy(logits, pseudo, mask)
    assert count == 2 and loss.item() == pytest.approx(2 * math.log(3))
    loss.backward()
    assert logits.grad[[2, 5], 2].lt(0).all() and logits.grad[[0, 1, 3, 4]].eq(0).all()


def test_joint_normalisation_is_a_weighted_mean_over_supervised_points():
    # 3 seen-labelled points predicted confidently right (loss ~0), 1 pseudo-labelled point
    # with uniform logits (loss log 3)
    logits = torch.zeros(5, 3)
    logits[[0, 1, 2], [0, 1, 0]] = 50.0
    labels = torch.tensor([0, 1, 0, -1, -1])
    batch = {"labels": labels, "teacher_label": torch.tensor([0, 0, 0, 2, 0]),
             "teacher_conf": torch.ones(5)}
    out = {"logits": logits, "pair_embeddings": F.normalize(torch.ones(5, 3), dim=-1)}
    seen = torch.tensor([True, True, False])

    def loss(**settings):
        config = LossConfig(mcfa_global=False, mcfa_local=False, lovasz_weight=0.0, unseen_mass_weight=0.0, **settings)
        return MethodCriterion(config, seen, ~seen)(out, batch)["loss"].item()

    # one cross-entropy over the 4 supervised points: (0 + 0 + 0 + log 3) / 4
    assert loss(pseudo_weight=1.0) == pytest.approx(math.log(3) / 4, abs=1e-6)
    # the pseudo point counts as 3 points: 3 log 3 / (3 + 3)
    assert loss(pseudo_weight=3.0) == pytest.approx(math.log(3) / 2, abs=1e-6)
    # per term: mean seen loss + weight * mean pseudo loss
    assert loss(pseudo_weight=3.0, normalize="per_term") == pytest.approx(3 * math.log(3), abs=1e-6)
    with pytest.raises(ConfigError, match="normalize"):
        LossConfig(normalize="mean")


def test_criterion_switches_and_phases():
    torch.manual_seed(0)
    n, d = 8, 4
    embeddings = F.normalize(torch.randn(n, d), dim=-1).requires_grad_()
    text = F.normalize(torch.randn(3, d), dim=-1)
    out = {"pair_embeddings": embeddings, "logits": 10 * embeddings @ text.T}   # every point paired
    batch = {"labels": torch.tensor([0, 1, 0, 1, -1, -1, -1, -1]),
             "teacher_label": torch.tensor([0, 1, 0, 1, 2, 2, 2, 2]),
             "teacher_conf": torch.tensor([0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.3, 0.9]),   # point 6: too unsure
             "point_to_voxel": torch.arange(n), "pair_point": torch.arange(n),
             "pair_taps": torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])[:, None].repeat(1, 4),
             "pair_tap_weights": torch.full((n, 4), 0.25),
             "pair_patch": torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]), "patch_features": torch.randn(4, d),
             "self_label": torch.tensor([-1, -1, -1, -1, 2, -1, 2, -1])}
    seen = torch.tensor([True, True, False])
    guided = MethodCriterion(LossConfig(unseen_mass_weight=1.0), seen, ~seen, "guided")(out, batch)
    assert set(guided) == {"loss_seen", "loss_pseudo", "loss_unseen_mass", "loss_lovasz", "loss_global",
                           "loss_local", "loss"}
    expected = (guided["loss_seen"] + guided["loss_pseudo"] + guided["loss_unseen_mass"] + guided["loss_lovasz"]
                + 0.5 * guided["loss_global"] + 0.5 * guided["loss_local"])
    assert guided["loss"].item() == pytest.approx(expected.item())
    off = MethodCriterion(LossConfig(pseudo=False, mcfa_global=False, mcfa_local=False, lovasz_weight=0.0,
                                     unseen_mass_weight=0.0), seen, ~seen)(out, batch)
    assert set(off) == {"loss_seen", "loss"}
    # Lovasz sees the labels the cross-entropy sees: in the guided phase the 3D labels
    # completed with pseudo labels (class 2 on points 4, 5, 7), with self labels in the self phase
    from zeroseg3d.losses.cross_entropy import lovasz_softmax

    completed = torch.tensor([0, 1, 0, 1, 2, 2, -1, 2])
    assert guided["loss_lovasz"].item() == pytest.approx(
        lovasz_softmax(out["logits"], completed, completed >= 0).item())
    self_phase = MethodCriterion(LossConfig(), seen, ~seen, "self")(out, batch)
    assert "loss_self" in self_phase and "loss_pseudo" in self_phase
    # the teacher's pseudo labels take precedence: the self label of point 4 is not used, the
    # one of point 6 (no pseudo label) is
    probs = out["logits"].softmax(1)
    assert self_phase["loss_self"].item() == pytest.approx(
        -math.log(probs[6, 2].item()) / (4 + 30 * 3 + 1), rel=1e-4)   # 4 seen, 3 pseudo at weight 30, 1 self
    completed = torch.tensor([0, 1, 0, 1, 2, 2, 2, 2])
    assert self_phase["loss_lovasz"].item() == pytest.approx(
        lovasz_softmax(out["logits"], completed, completed >= 0).item())
    # annotation-free: no seen classes, no seen loss
    free = MethodCriterion(LossConfig(), torch.zeros(3, dtype=torch.bool), torch.ones(3, dtype=torch.bool))(
        out, {**batch, "labels": torch.full((n,), -1)})
    assert "loss_seen" not in free and free["loss_pseudo"].item() > 0


def test_lovasz_softmax_is_one_minus_iou_for_hard_predictions():
    from zeroseg3d.losses.cross_entropy import lovasz_softmax

    # confident one-hot predictions: the Lovasz extension equals 1 - IoU per class exactly
    targets = torch.tensor([0, 0, 0, 1, 1, -1])
    predicted = torch.tensor([0, 0, 1, 1, 1, 0])
    logits = torch.nn.functional.one_hot(predicted, 2).float() * 100
    loss = lovasz_softmax(logits, targets, targets >= 0)
    iou = [2 / 3, 2 / 3]   # class 0: tp 2, fn 1; class 1: tp 2, fp 1
    assert float(loss) == pytest.approx(1 - sum(iou) / 2, abs=1e-5)
    perfect = torch.nn.functional.one_hot(targets.clamp(min=0), 2).float() * 100
    assert float(lovasz_softmax(perfect, targets, targets >= 0)) == pytest.approx(0.0, abs=1e-5)
    # it has a gradient towards the right class
    logits = torch.zeros(5, 2, requires_grad=True)
    lovasz_softmax(logits, targets[:5], torch.ones(5, dtype=torch.bool)).backward()
    assert (logits.grad[:3, 0] < 0).all() and (logits.grad[3:, 1] < 0).all()


def test_unseen_mass_loss_pushes_unlabelled_points_out_of_the_seen_classes():
    from zeroseg3d.losses.cross_entropy import unseen_mass_loss

    unseen = torch.tensor([False, False, True, True])
    logits = torch.zeros(3, 4, requires_grad=True)
    mask = torch.tensor([True, True, False])
    loss = unseen_mass_loss(logits, mask, unseen)
    assert loss.item() == pytest.approx(math.log(2))    # uniform: half the mass on unseen classes
    loss.backward()
    assert (logits.grad[:2, :2] > 0).all() and (logits.grad[:2, 2:] < 0).all() and (logits.grad[2] == 0).all()
    # which unseen class does not matter
    confident = torch.tensor([[0.0, 0.0, 30.0, 0.0], [0.0, 0.0, 0.0, 30.0]])
    assert unseen_mass_loss(confident, torch.ones(2, dtype=torch.bool), unseen).item() == pytest.approx(0.0, abs=1e-6)
    # annotation-free (every class unseen): nothing to say
    assert unseen_mass_loss(logits, mask, torch.ones(4, dtype=torch.bool)).item() == 0.0
