"""Teacher loading, pseudo labels on points, the cache and the quality report."""

import time

import numpy as np
import pytest
import torch

from clip_fixtures import TINY_VIT, write_model_config
from zeroseg3d.cli import main
from zeroseg3d.datasets.frame import Camera, Frame
from zeroseg3d.datasets.semantickitti import SemanticKITTI
from zeroseg3d.datasets.vocabulary import Vocabulary
from zeroseg3d.geometry.config import OcclusionConfig, PairingConfig
from zeroseg3d.teacher.cache import TeacherCache, cached_pairing
from zeroseg3d.teacher.config import TeacherConfig
from zeroseg3d.teacher.loading import TeacherLoadError, load_clip
from zeroseg3d.teacher.run import fill_cache
from zeroseg3d.teacher.teacher import Teacher


@pytest.fixture
def tiny_config(tmp_path):
    path = write_model_config(tmp_path, "zs3d-teacher-tiny", TINY_VIT)
    return TeacherConfig(model_config=str(path), random_init=True, readout="tokens", short_side=32,
                         cache_dir=str(tmp_path / "cache"))


def test_missing_weights_say_what_to_pass():
    with pytest.raises(TeacherLoadError, match="no weights given.*teacher.checkpoint=.*teacher.pretrained=TAG"):
        load_clip(TeacherConfig(model="RN50"))


def test_unreachable_pretrained_tag_fails_fast(monkeypatch):
    monkeypatch.setattr("zeroseg3d.teacher.loading._cached_pretrained", lambda model, tag: None)
    monkeypatch.setattr("zeroseg3d.teacher.loading._hub_reachable", lambda timeout: False)
    start = time.monotonic()
    with pytest.raises(TeacherLoadError, match="not in open_clip's cache and the hub cannot be reached"):
        load_clip(TeacherConfig(model="RN50", pretrained="openai"))
    assert time.monotonic() - start < 5


def test_unknown_pretrained_tag_lists_known_ones():
    with pytest.raises(TeacherLoadError, match="no pretrained tag 'nope'.*openai"):
        load_clip(TeacherConfig(model="RN50", pretrained="nope"))


def test_checkpoints_load_safely_and_pickles_are_refused(tmp_path, tiny_config):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    reference = load_clip(tiny_config).model
    state = {k: v.contiguous() for k, v in reference.state_dict().items()}
    save_file(state, tmp_path / "w.safetensors")
    torch.save(state, tmp_path / "w.pt")
    torch.save({"state_dict": state, "note": object.__new__(PickledThing)}, tmp_path / "pickled.pt")
    tokens = torch.zeros(1, 16, dtype=torch.long)
    for name in ("w.safetensors", "w.pt"):
        config = TeacherConfig(model_config=tiny_config.model_config, checkpoint=str(tmp_path / name))
        loaded = load_clip(config)
        torch.testing.assert_close(loaded.model.encode_text(tokens), reference.encode_text(tokens))
        assert loaded.identity.startswith("file:")
    unsafe = TeacherConfig(model_config=tiny_config.model_config, checkpoint=str(tmp_path / "pickled.pt"))
    with pytest.raises(TeacherLoadError, match="refused, this checkpoint only loads by unpickling"):
        load_clip(unsafe)
    unsafe.allow_unsafe_pickle = True
    load_clip(unsafe)


def test_openai_weights_get_the_quickgelu_they_were_trained_with(tmp_path, tiny_config, monkeypatch):
    import hashlib

    from open_clip import pretrained
    from open_clip.transformer import QuickGELU

    from zeroseg3d.teacher.loading import uses_quick_gelu, weights_identity

    assert uses_quick_gelu(TeacherConfig(model="ViT-B-16", pretrained="openai"), "ViT-B-16")
    assert not uses_quick_gelu(TeacherConfig(model="ViT-B-16", pretrained="laion2b_s34b_b88k"), "ViT-B-16")
    assert not uses_quick_gelu(TeacherConfig(model="ViT-B-16", random_init=True), "ViT-B-16")
    # a local file is recognised by its SHA-256, which open_clip's record of the OpenAI download carries
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"stand-in for a checkpoint")
    local = TeacherConfig(model="ViT-B-16", checkpoint=str(weights))
    assert not uses_quick_gelu(local, "ViT-B-16")
    record = dict(pretrained.get_pretrained_cfg("ViT-B-16", "openai"))
    record["url"] = record["url"].rsplit("/", 2)[0] + "/" + hashlib.sha256(weights.read_bytes()).hexdigest() + "/x.pt"
    real = pretrained.get_pretrained_cfg
    monkeypatch.setattr(pretrained, "get_pretrained_cfg",
                        lambda model, tag: record if (model, tag) == ("ViT-B-16", "openai") else real(model, tag))
    assert uses_quick_gelu(local, "ViT-B-16")
    # the loader builds the activation, and the features differ from plain GELU's
    quick = TeacherConfig(**{**tiny_config.__dict__, "quick_gelu": True})
    plain = load_clip(tiny_config).model
    model = load_clip(quick).model
    assert isinstance(model.visual.transformer.resblocks[0].mlp.gelu, QuickGELU)
    assert not isinstance(plain.visual.transformer.resblocks[0].mlp.gelu, QuickGELU)
    image = torch.rand(1, 3, 32, 32)
    assert not torch.allclose(model.encode_image(image), plain.encode_image(image), atol=1e-4)
    assert weights_identity(quick) != weights_identity(tiny_config)


class PickledThing:
    """An arbitrary class: only unpickling can rebuild it."""


def _square_frame(width=40, height=20):
    """A camera looking along +x; points at x=10 spread over the image."""
    K = np.array([[10.0, 0, width / 2 - 0.5], [0, 10.0, height / 2 - 0.5], [0, 0, 1]])
    T = np.array([[0.0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
    left = Camera("left", K, T, (width, height), image=np.zeros((height, width, 3), np.uint8))
    # a second camera with the same view, to test the multi-camera rule
    right = Camera("right", K, T @ np.diag([1.0, 1, 1, 1]), (width, height), image=np.zeros((height, width, 3), np.uint8))
    points = np.array([[10.0, 15.0, 0, 0],   # u = 19.5 - 15 = 4.5 -> left part of the image
                       [10.0, -15.0, 0, 0],  # u = 34.5 -> right part
                       [-10.0, 0, 0, 0]],    # behind the cameras
                      np.float32)
    return Frame("hand", points, [left, right])


def test_pseudo_labels_of_a_hand_made_frame(tiny_config, monkeypatch):
    vocab = Vocabulary.from_names(["road", "car"])
    teacher = Teacher(tiny_config, vocab, PairingConfig(occlusion=OcclusionConfig(enabled=False)))
    # camera 0: class 0 on the left half, class 1 on the right, moderately confident
    # camera 1: class 1 everywhere, very confident
    grid0 = torch.zeros(2, 2, 4)
    grid0[0, :, :2], grid0[1, :, 2:] = 2.0, 2.0
    grid1 = torch.zeros(2, 2, 4)
    grid1[1] = 9.0
    features = torch.randn(32, 2, 4)
    monkeypatch.setattr(teacher, "image_outputs", lambda images: [(features, grid0), (features, grid1)])
    out = teacher.frame_outputs(_square_frame())
    # most confident camera wins: camera 1 says class 1 for both visible points
    assert out["point_label"].tolist() == [1, 1, -1]
    assert out["view_index"].tolist() == [0, 1]
    confident = torch.softmax(torch.tensor([0.0, 9.0]), 0)
    assert out["point_conf"][0].item() == pytest.approx(confident[1].item(), abs=1e-3)
    np.testing.assert_allclose(out["view_probs"].float().numpy(), confident.repeat(2, 1).numpy(), atol=1e-3)
    # the pairing it read, camera after camera, and the patches its pairs read: the two points'
    # pixels (u 4.5 and 34.5 on the middle row) read columns 0, 1 and 3 of both rows of each
    # camera's 2x4 grid (cells numbered over the two grids)
    pairing = cached_pairing(out)
    assert pairing.point_idx.tolist() == [0, 1, 0, 1] and pairing.cam_idx.tolist() == [0, 0, 1, 1]
    assert out["patch_grid"].tolist() == [[2, 4], [2, 4]]
    assert out["patch_cell"].tolist() == [0, 1, 3, 4, 5, 7, 8, 9, 11, 12, 13, 15]
    flat = features.permute(1, 2, 0).reshape(8, 32).half()
    assert out["patch_table"].dtype == torch.float16
    assert torch.equal(out["patch_table"], torch.cat([flat, flat])[out["patch_cell"].long()])
    # nearest camera: a tie in depth keeps the first camera, whose labels follow the image halves
    teacher.config.multi_camera = "nearest"
    out = teacher.frame_outputs(_square_frame())
    assert out["point_label"].tolist() == [0, 1, -1]
    # camera 0's moderate confidence: softmax of (2, 0) for the left point
    assert out["point_conf"][0].item() == pytest.approx(torch.softmax(torch.tensor([2.0, 0.0]), 0)[0].item(), abs=1e-3)


def test_pseudo_labels_among_the_unseen_classes():
    from zeroseg3d.teacher.cache import point_labels, point_tensors

    probs = np.array([[0.6, 0.3, 0.1, 0.0],     # seen class 0 first; among {1, 2}: class 1, 0.3 / 0.4
                      [0.1, 0.1, 0.7, 0.1],     # class 2 either way
                      [0.95, 0.03, 0.02, 0.0]])  # almost no mass on {1, 2}
    out = point_tensors(5, np.array([0, 2, 4]), probs)
    label, conf = point_labels(out)
    assert label.tolist() == [0, -1, 2, -1, 0]
    label, conf = point_labels(out, among=np.array([1, 2]), min_mass=0.1)
    assert label.tolist() == [1, -1, 2, -1, -1]
    np.testing.assert_allclose(conf[[0, 2]], [0.3 / 0.4, 0.7 / 0.8], atol=2e-3)
    assert point_labels(out, among=np.array([1, 2]), min_mass=0.0)[0].tolist() == [1, -1, 2, -1, 1]

    from zeroseg3d.teacher.cache import among_mass

    np.testing.assert_allclose(among_mass(out, np.array([1, 2])), [0.4, 0, 0.8, 0, 0.05], atol=2e-3)


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("teacher_world")
    main(["world", "generate", "--out", str(root), "--sequences", "1", "--frames", "4", "--seed", "2",
          "--workers", "1"])
    return root


class Interrupt(Exception):
    pass


def test_cache_resume_corruption_and_key_change(small_world, tiny_config, tmp_path):
    dataset = SemanticKITTI.from_root(small_world, split="all")
    torch.manual_seed(0)
    teacher = Teacher(tiny_config, dataset.vocabulary)
    full = TeacherCache(tmp_path / "full", teacher.key)
    assert fill_cache(teacher, dataset, full, progress=False).computed == 4
    # an interrupted run, then a rerun, ends with the same files
    resumed = TeacherCache(tmp_path / "resumed", teacher.key)
    original, calls = teacher.frame_outputs, []

    def flaky(frame):
        calls.append(frame.frame_id)
        if len(calls) == 3:
            raise Interrupt()
        return original(frame)

    teacher.frame_outputs = flaky
    with pytest.raises(Interrupt):
        fill_cache(teacher, dataset, resumed, progress=False)
    teacher.frame_outputs = original
    stats = fill_cache(teacher, dataset, resumed, progress=False)
    assert (stats.computed, stats.reused) == (2, 2)
    def same(a, b):  # safetensors orders its metadata unpredictably: compare contents
        return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    for frame_id in dataset.frame_ids:
        assert same(full.load(frame_id), resumed.load(frame_id))
    assert not list((tmp_path / "resumed" / "frames").glob(".*tmp"))
    # a truncated file and a file with flipped bytes are both recomputed
    victim = resumed.path(dataset.frame_ids[1])
    victim.write_bytes(victim.read_bytes()[:-100])
    other = resumed.path(dataset.frame_ids[2])
    data = bytearray(other.read_bytes())
    data[-10] ^= 0xFF
    other.write_bytes(bytes(data))
    assert resumed.load(dataset.frame_ids[1]) is None and resumed.load(dataset.frame_ids[2]) is None
    assert fill_cache(teacher, dataset, resumed, progress=False).computed == 2
    assert same(resumed.load(dataset.frame_ids[1]), full.load(dataset.frame_ids[1]))
    # a different key (other prompts or weights) invalidates every file
    assert fill_cache(teacher, dataset, TeacherCache(tmp_path / "resumed", "other"), progress=False).computed == 4


def test_quality_report_and_cli(small_world, tiny_config, tmp_path, capsys):
    config = tmp_path / "teacher.yaml"
    config.write_text(
        f"data: {{root: {small_world}, split: all}}\n"
        f"teacher: {{model_config: {tiny_config.model_config}, random_init: true, readout: tokens,"
        f" short_side: 32, cache_dir: {tmp_path / 'cli_cache'}}}\n")
    assert main(["teacher", str(config)]) == 0
    out = capsys.readouterr().out
    assert "4 computed, 0 reused" in out and "mIoU unseen" in out
    assert (tmp_path / "cli_cache" / "config.yaml").is_file()
    assert (tmp_path / "cli_cache" / "quality_all.json").is_file()
    assert main(["teacher", str(config), "--no-report"]) == 0
    assert "0 computed, 4 reused" in capsys.readouterr().out
    assert len(list((tmp_path / "cli_cache").glob("frames/*.safetensors"))) == 4


def test_text_embeddings_are_cached_by_their_key(tiny_config, monkeypatch):
    from pathlib import Path

    vocab = Vocabulary.from_names(["road", "car", "fire hydrant"])
    first = Teacher(tiny_config, vocab).text
    files = list((Path(tiny_config.cache_dir) / "text").glob("*.safetensors"))
    assert len(files) == 1
    calls = []
    import zeroseg3d.teacher.teacher as module

    original = module.encode_classes
    monkeypatch.setattr(module, "encode_classes", lambda *a, **k: calls.append(1) or original(*a, **k))
    torch.testing.assert_close(Teacher(tiny_config, vocab).text, first)
    assert calls == []                                   # read from the cache
    files[0].write_bytes(b"damaged")
    torch.testing.assert_close(Teacher(tiny_config, vocab).text, first)
    assert calls == [1]                                  # recomputed
    Teacher(tiny_config, Vocabulary.from_names(["road", "car"]))
    assert len(list((Path(tiny_config.cache_dir) / "text").glob("*.safetensors"))) == 2


def _cached(probs, view, num_points):
    from zeroseg3d.teacher.cache import point_tensors

    return point_tensors(num_points, np.asarray(view), np.asarray(probs, np.float32))


def test_class_weights_give_a_rare_class_its_points_back():
    from zeroseg3d.teacher.cache import point_labels

    # classes 0 (seen), 1 (truck), 2 (sign); a point the teacher calls 60% truck, 30% sign
    outputs = _cached([[0.1, 0.6, 0.3]], [0], 1)
    label, conf = point_labels(outputs, np.array([1, 2]))
    assert label.tolist() == [1] and conf[0] == pytest.approx(2 / 3, abs=1e-3)
    label, conf = point_labels(outputs, np.array([1, 2]), weights=np.array([1.0, 3.0]))
    assert label.tolist() == [2] and conf[0] == pytest.approx(0.9 / 1.5, abs=1e-3)


def test_class_prior_is_the_mean_renormalised_probability_on_unlabelled_points():
    from zeroseg3d.teacher.cache import class_prior

    class Frames:   # two frames of 3 points; point 0 of each is labelled with the seen class 0
        frame_ids = ["a", "b"]

        def __len__(self):
            return 2

        def __getitem__(self, index):
            return Frame(self.frame_ids[index], np.zeros((3, 4), np.float32), labels=np.array([0, -1, 1]))

    class Cache:
        outputs = {"a": _cached([[0.9, 0.1, 0.0], [0.0, 0.5, 0.5], [0.2, 0.8, 0.0]], [0, 1, 2], 3),
                   "b": _cached([[0.0, 0.2, 0.2]], [1], 3)}     # point 2 unseen by the camera

        def load(self, frame_id, num_points=None):
            return self.outputs[frame_id]

    prior = class_prior(Frames(), Cache(), np.array([1, 2]), seen=[0])
    # the unlabelled points in view: a1 (0.5, 0.5), a2 (1, 0), b1 (0.5, 0.5); a0 is labelled
    np.testing.assert_allclose(prior, [2 / 3, 1 / 3], atol=1e-3)

    class Missing(Cache):
        def load(self, frame_id, num_points=None):
            return None if frame_id == "b" else self.outputs[frame_id]

        def path(self, frame_id):
            return f"cache/frames/{frame_id}.safetensors"

    from zeroseg3d.errors import DataError

    with pytest.raises(DataError, match="b.safetensors: frame b is missing"):
        class_prior(Frames(), Missing(), np.array([1, 2]), seen=[0])
