"""The demo teacher: trains deterministically, loads through open_clip like any CLIP, and
classifies rendered crops far better than chance."""

import json

import numpy as np
import pytest

from zeroseg3d.teacher.config import TeacherConfig
from zeroseg3d.teacher.loading import load_clip
from zeroseg3d.world.clip_quality import evaluate_world_clip
from zeroseg3d.world.clip_training import ClipTrainConfig, train_world_clip
from zeroseg3d.world.generate import render_image_set


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return render_image_set(tmp_path_factory.mktemp("images2d") / "images2d", 12, seed=1, workers=2, progress=False)


def test_train_load_and_classify(images, tmp_path):
    config = ClipTrainConfig(steps=70, batch_size=64, lr=2e-3, warmup=10, seed=3)
    out = tmp_path / "a" / "zs3d-test-clip.safetensors"
    record = train_world_clip([images], out, config, progress=False)
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert json.loads(out.with_suffix(".train.json").read_text())["settings"]["steps"] == 70
    # an ordinary open_clip model config + safetensors checkpoint, loaded the way real CLIP is
    loaded = load_clip(TeacherConfig(model_config=str(out.with_suffix(".json")), checkpoint=str(out)))
    assert loaded.identity.startswith("file:") and loaded.image_size == 32
    quality = evaluate_world_clip(out, [images], crops_per_class=20, max_images=6)
    assert quality["crop_accuracy"] > 3 * quality["chance"], quality["crop_accuracy"]
    assert quality["pixel_accuracy"] > 0.3
    # the same seed gives the same weights
    again = tmp_path / "b" / "zs3d-test-clip.safetensors"
    train_world_clip([images], again, config, progress=False)
    assert again.read_bytes() == out.read_bytes()
    assert record["final_losses"]["i2t"] < np.log(17)
