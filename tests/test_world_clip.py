"""The demo teacher: trains deterministically, loads through open_clip like any CLIP, and is
measured on streets it never saw (how well it learns: tests/test_demo.py)."""

import json
from dataclasses import replace

import numpy as np
import pytest

from zeroseg3d.teacher.config import TeacherConfig
from zeroseg3d.teacher.loading import load_clip
from zeroseg3d.world.clip_training import WORLD_CLASSES, CropSampler, train_world_clip
from zeroseg3d.world.config import ClipTrainConfig
from zeroseg3d.world.generate import HELDOUT_FIRST, render_image_set


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return render_image_set(tmp_path_factory.mktemp("images2d") / "images2d", 12, seed=1, workers=2, progress=False)


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    return render_image_set(tmp_path_factory.mktemp("heldout") / "images2d", 6, seed=1, workers=2, progress=False,
                            first=HELDOUT_FIRST)


def test_heldout_images_show_other_streets(images, heldout):
    assert {p.name for p in (images / "image_2").iterdir()}.isdisjoint(p.name for p in (heldout / "image_2").iterdir())
    first_train = (images / "image_2" / "000000.png").read_bytes()
    assert all(p.read_bytes() != first_train for p in (heldout / "image_2").iterdir())


def test_hard_classes_get_their_share_of_crops():
    rng = np.random.default_rng(0)
    # one image of vertical stripes 32 pixels wide, one per class: every crop is pure enough
    labels = np.repeat(np.arange(len(WORLD_CLASSES) + 1), 32)[None, None].repeat(32, 1)
    images = np.zeros((*labels.shape, 3), np.uint8)
    sampler = CropSampler(images, labels, rng, 8, 8)
    error = np.zeros(len(WORLD_CLASSES) + 1)
    error[WORLD_CLASSES.index("motorcycle")] = 1.0
    sampler.focus(error, share=0.5)
    _, classes = sampler.sample(4000)
    expected = 0.5 / len(sampler.present) + 0.5
    assert np.mean(classes == WORLD_CLASSES.index("motorcycle")) == pytest.approx(expected, abs=0.03)
    assert np.mean(classes == WORLD_CLASSES.index("road")) == pytest.approx(0.5 / len(sampler.present), abs=0.02)


def test_training_repeats_per_seed_and_loads_like_any_clip(images, tmp_path):
    """Each step runs the same code, so a few steps show what a long run does. That the teacher
    learns is the demo test's: its 300-step teacher against the untrained one on held-out streets."""
    short = ClipTrainConfig(steps=4, batch_size=32, lr=2e-3, warmup=2, seed=3)
    runs = [tmp_path / name / "zs3d-test-clip.safetensors" for name in ("a", "b", "c")]
    for path, seed in zip(runs, (3, 3, 4)):
        train_world_clip([images], path, replace(short, seed=seed), progress=False)
    assert runs[0].read_bytes() == runs[1].read_bytes() != runs[2].read_bytes()
    record = json.loads(runs[0].with_suffix(".train.json").read_text())
    assert record["settings"]["steps"] == 4 and record["settings"]["precision"] == ("bf16" if short.use_bf16() else "fp32")
    assert len(record["loss_curve"]) == 4 and all(np.isfinite(record["loss_curve"]).flat)
    # an ordinary open_clip model config + safetensors checkpoint, loaded the way real CLIP is
    loaded = load_clip(TeacherConfig(model_config=str(runs[0].with_suffix(".json")), checkpoint=str(runs[0])))
    assert loaded.identity.startswith("file:") and loaded.image_size == 32


def test_command_line_trains_and_measures_on_heldout_streets(tmp_path, capsys):
    from zeroseg3d.cli import main

    world = tmp_path / "world"
    assert main(["world", "generate", "--out", str(world), "--sequences", "1", "--frames", "1",
                 "--images", "6", "--heldout-images", "3", "--seed", "2"]) == 0
    assert len(list((world / "images2d_heldout" / "image_2").glob("*.png"))) == 3
    out = tmp_path / "teacher" / "zs3d-cli-clip.safetensors"
    assert main(["world", "train-clip", "--world", str(world), "--out", str(out), "--steps", "5",
                 "--batch-size", "24"]) == 0
    assert json.loads(out.with_suffix(".train.json").read_text())["settings"]["batch_size"] == 24
    quality = json.loads(out.with_suffix(".quality.json").read_text())
    assert quality["images"] == 3   # measured on the held-out streets, not on its training images
    assert "held-out images: 3" in capsys.readouterr().out


def test_training_settings_are_checked_and_precision_resolved():
    from zeroseg3d.errors import ConfigError

    with pytest.raises(ConfigError, match="precision must be auto, bf16 or fp32, not 'fp16'"):
        ClipTrainConfig(precision="fp16")
    with pytest.raises(ConfigError, match="min_crop <= max_crop"):
        ClipTrainConfig(min_crop=50, max_crop=20)
    with pytest.raises(ConfigError, match="batch_size must be >= 1, not 0"):
        ClipTrainConfig(batch_size=0)
    assert ClipTrainConfig(precision="fp32").use_bf16() is False
    assert ClipTrainConfig(precision="bf16").use_bf16() is True


def test_quality_is_measured_with_the_pipelines_read_out():
    """`world train-clip` scores the teacher with world_teacher_config: the settings of
    configs/world.yaml that shape the teacher's outputs, so its figures are the pseudo labels'."""
    from pathlib import Path

    from zeroseg3d.config import load_config
    from zeroseg3d.world.clip_quality import world_teacher_config

    pipeline = load_config(Path(__file__).resolve().parents[1] / "configs" / "world.yaml").teacher
    quality = world_teacher_config("teacher/zs3d-world-clip.safetensors")
    assert quality.output_settings() == pipeline.output_settings()
    assert quality.model_config.endswith("zs3d-world-clip.json")
