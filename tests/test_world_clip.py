"""The demo teacher: trains deterministically, loads through open_clip like any CLIP, and
classifies rendered crops of streets it never saw far better than chance."""

import json

import numpy as np
import pytest

from zeroseg3d.teacher.config import TeacherConfig
from zeroseg3d.teacher.loading import load_clip
from zeroseg3d.world.clip_quality import evaluate_world_clip
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


def test_train_load_and_classify(images, heldout, tmp_path):
    config = ClipTrainConfig(steps=70, batch_size=64, lr=2e-3, warmup=10, seed=3)
    out = tmp_path / "a" / "zs3d-test-clip.safetensors"
    record = train_world_clip([images], out, config, progress=False)
    assert out.is_file() and out.with_suffix(".json").is_file()
    settings = json.loads(out.with_suffix(".train.json").read_text())["settings"]
    assert settings["steps"] == 70 and settings["precision"] == ("bf16" if config.use_bf16() else "fp32")
    # an ordinary open_clip model config + safetensors checkpoint, loaded the way real CLIP is
    loaded = load_clip(TeacherConfig(model_config=str(out.with_suffix(".json")), checkpoint=str(out)))
    assert loaded.identity.startswith("file:") and loaded.image_size == 32
    quality = evaluate_world_clip(out, [heldout], crops_per_class=20, max_images=6)
    assert quality["crop_accuracy"] > 3 * quality["chance"], quality["crop_accuracy"]
    # dense read-out on streets it never saw: well above the same model before training
    untrained = tmp_path / "untrained" / "zs3d-test-clip.safetensors"
    train_world_clip([images], untrained, ClipTrainConfig(steps=0, seed=3), progress=False)
    before = evaluate_world_clip(untrained, [heldout], crops_per_class=20, max_images=6)
    assert quality["pixel_accuracy"] > before["pixel_accuracy"] + 0.1, (quality["pixel_accuracy"], before["pixel_accuracy"])
    # the same seed gives the same weights (shown on short runs: each step is the same code)
    short = ClipTrainConfig(steps=12, batch_size=64, lr=2e-3, warmup=4, seed=3)
    first_run, second_run = (tmp_path / name / "zs3d-test-clip.safetensors" for name in ("b", "c"))
    for path in (first_run, second_run):
        train_world_clip([images], path, short, progress=False)
    assert first_run.read_bytes() == second_run.read_bytes() != out.read_bytes()
    # the contrastive loss falls below where it started (about ln 17, chance): 2.98 -> 2.55 here
    first = record["loss_curve"][0][0]
    assert record["final_losses"]["i2t"] < 0.9 * first, (record["final_losses"]["i2t"], first)


def test_command_line_trains_and_measures_on_heldout_streets(tmp_path, capsys):
    from zeroseg3d.cli import main

    world = tmp_path / "world"
    assert main(["world", "generate", "--out", str(world), "--sequences", "1", "--frames", "1",
                 "--images", "6", "--heldout-images", "3", "--seed", "2"]) == 0
    assert len(list((world / "images2d_heldout" / "image_2").glob("*.png"))) == 3
    out = tmp_path / "teacher" / "zs3d-cli-clip.safetensors"
    assert main(["world", "train-clip", "--world", str(world), "--out", str(out), "--steps", "5"]) == 0
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
