"""Configs compose from a base and take dotted overrides; the CLI works end to end."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from zeroseg3d.cli import main
from zeroseg3d.config import Config, load_config, save_config
from zeroseg3d.datasets import build_dataset
from zeroseg3d.datasets.vocabulary import Vocabulary
from zeroseg3d.errors import ConfigError, DataError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_composition_from_base_and_overrides():
    config = load_config(CONFIGS / "semantickitti_annotation_free.yaml",
                         ["data.voxel_size=0.1", "data.pairing.occlusion.enabled=false",
                          "data.unseen_classes=[car,person]"])
    assert isinstance(config, Config)
    assert config.data.dataset == "semantickitti" and config.data.unseen_split == "annotation_free"
    assert config.data.voxel_size == 0.1 and config.data.pairing.occlusion.enabled is False
    assert config.data.augment.scale_max == 1.05  # from base.yaml
    assert config.data.unseen_classes == ["car", "person"]
    assert config.run.name == "semantickitti_annotation_free"


def test_every_shipped_config_loads():
    for path in sorted(CONFIGS.glob("*.yaml")):
        config = load_config(path)
        Vocabulary.load(config.data.vocabulary).split(config.data.unseen_split, config.data.unseen_classes)


def test_bad_configs_are_refused_with_the_key(tmp_path):
    with pytest.raises(ConfigError, match="Did you mean: 'voxel_size'"):
        load_config(CONFIGS / "semantickitti.yaml", ["data.voxel_siz=0.1"])
    with pytest.raises(ConfigError, match="could not be converted to Float.*data.voxel_size"):
        load_config(None, ["data.voxel_size=abc"])
    with pytest.raises(ConfigError, match="not of the form key=value"):
        load_config(None, ["data.voxel_size"])
    for bad in ("loss.pseudo_prior_power=1.5", "loss.pseudo_object_ground=-1", "loss.pseudo_vote_mass_power=-1",
                "model.in_channels=5"):
        with pytest.raises(ConfigError, match=bad.split("=")[0]):
            load_config(None, [bad])
    loop = tmp_path / "a.yaml"
    loop.write_text("_base_: a.yaml\n")
    with pytest.raises(ConfigError, match="_base_ cycle"):
        load_config(loop)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_resolved_config_is_saved_and_reloads(tmp_path):
    config = load_config(CONFIGS / "nuscenes.yaml", ["run.seed=7"])
    path = save_config(config, tmp_path / "run")
    assert path.read_text().startswith("# resolved config, written by zeroseg3d")
    assert load_config(path) == config
    assert yaml.safe_load(path.read_text())["run"]["seed"] == 7


def test_a_stored_config_keeps_the_value_a_later_default_replaced():
    """A checkpoint written before ``model.input_norm`` existed was trained without it: its
    stored config loads as it was trained, a config that names the key keeps its value, and a
    new run gets the new default."""
    from zeroseg3d.config import config_to_yaml, load_config_text

    stored = yaml.safe_load(config_to_yaml(Config()))
    del stored["model"]["input_norm"]
    assert load_config_text(yaml.safe_dump(stored)).model.input_norm is False
    assert load_config_text(yaml.safe_dump(stored), overrides=["model.input_norm=true"]).model.input_norm is True
    assert load_config_text(config_to_yaml(Config())).model.input_norm is True
    assert Config().model.input_norm is True and load_config(None).model.input_norm is True


def test_a_stored_config_with_a_renamed_key_loads_under_the_new_name():
    """``train.amp`` (bf16 on a GPU or not) became ``train.precision``: a checkpoint's stored
    config with the old key loads with the precision it trained in; a new file must use the
    new key, and an unknown precision is refused."""
    from zeroseg3d.config import config_to_yaml, load_config_text

    stored = yaml.safe_load(config_to_yaml(Config()))
    del stored["train"]["precision"]
    for amp, precision in ((True, "auto"), (False, "fp32")):
        stored["train"]["amp"] = amp
        assert load_config_text(yaml.safe_dump(stored)).train.precision == precision
    with pytest.raises(ConfigError, match="amp"):
        load_config(None, ["train.amp=true"])
    with pytest.raises(ConfigError, match="train.precision must be one of auto, fp32, bf16, not 'fp16'"):
        load_config(None, ["train.precision=fp16"])


def test_build_dataset_from_config(kitti_root):
    config = load_config(CONFIGS / "semantickitti.yaml",
                         [f"data.root={kitti_root}", "data.sequences=['00']"])
    dataset = build_dataset(config.data)
    assert len(dataset) == 3 and dataset.vocabulary.name == "semantickitti"
    # the val split is sequence 08 unless data.val_sequences names others
    with pytest.raises(DataError, match="none of the 'val' sequences"):
        build_dataset(config.data, "val")
    config = load_config(CONFIGS / "semantickitti.yaml",
                         [f"data.root={kitti_root}", "data.sequences=['00']", "data.val_sequences=['00']"])
    assert build_dataset(config.data, "val").frame_ids == dataset.frame_ids


def test_inspect_json_on_a_real_frame(kitti_root, capsys):
    assert main(["data", "inspect", str(kitti_root), "--frame", "000000", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["points"] == 124668 and report["origin"] is None
    from zeroseg3d.datasets.io import read_points

    points = read_points(kitti_root / "sequences/00/velodyne/000000.bin")[0]
    np.testing.assert_allclose(report["bounds"]["min"], points[:, :3].min(axis=0), atol=1e-3)
    np.testing.assert_allclose(report["bounds"]["max"], points[:, :3].max(axis=0), atol=1e-3)
    assert report["bounds"]["max"][0] - report["bounds"]["min"][0] > 50   # a street scan, tens of metres
    assert 0 <= report["intensity"][0] < report["intensity"][1] <= 1
    assert sum(report["labels"].values()) == 124668
    assert report["labels"]["road"] > report["labels"]["building"] > report["labels"]["car"] > 0
    assert 18000 < report["cameras"]["image_2"] < 20500


def test_inspect_text_and_unknown_frame(kitti_root, capsys):
    assert main(["data", "inspect", str(kitti_root / "sequences/00"), "--frame", "00/000002"]) == 0
    out = capsys.readouterr().out
    assert "points: 124478" in out and "camera image_2 (1241x376, image absent)" in out
    assert "bounds (m): x " in out and "intensity (normalised to 0..1): 0.000.." in out and "origin:" not in out
    assert main(["data", "inspect", str(kitti_root), "--frame", "000009"]) == 2
    assert "no frame '000009'" in capsys.readouterr().err


def test_console_script_help_and_info(capsys):
    cli = Path(sys.executable).with_name("zeroseg3d")
    result = subprocess.run([str(cli), "--help"], capture_output=True, text=True, check=True)
    for command in ("teacher", "train", "evaluate", "predict", "data", "world", "demo", "info"):
        assert command in result.stdout, command
    # in process: a second interpreter would spend ~10 s importing every optional library again
    assert main(["info", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["torch"]["version"].startswith("2.")
    assert set(report["optional"]) == {"spconv", "open_clip", "nuscenes", "rerun", "open3d"}
    assert all("importable" in probe for probe in report["optional"].values())


def test_heavy_libraries_are_not_imported_by_the_data_layer():
    code = ("import sys, zeroseg3d.datasets, zeroseg3d.geometry, zeroseg3d.config, zeroseg3d.cli;"
            "import zeroseg3d.datasets.semantickitti, zeroseg3d.datasets.custom, zeroseg3d.datasets.nuscenes;"
            "print(sorted(m for m in ('spconv', 'open_clip', 'nuscenes', 'open3d', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_inspect_reports_a_georeferenced_scans_origin(tmp_path, capsys):
    xyz = np.random.default_rng(0).uniform(-20, 20, (300, 3)) + [512345.25, 5412345.75, 231.5]
    np.save(tmp_path / "utm.npy", np.concatenate([xyz, np.full((300, 1), 0.5)], axis=1))
    assert main(["data", "inspect", str(tmp_path / "utm.npy"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    origin = np.array(report["origin"])
    np.testing.assert_allclose(np.array(report["bounds"]["min"]) + origin, xyz.min(axis=0), atol=2e-3)
    np.testing.assert_allclose(np.array(report["bounds"]["max"]) + origin, xyz.max(axis=0), atol=2e-3)
    assert report["intensity"] == [0.5, 0.5]
