"""Each kind of bad input gets a clear error naming the file and the problem."""

import numpy as np
import pytest

from conftest import write_kitti_sequence
from zeroseg3d.cli import main
from zeroseg3d.datasets.semantickitti import SemanticKITTI
from zeroseg3d.datasets.vocabulary import Vocabulary
from zeroseg3d.errors import ConfigError, DataError


def scan(n=100, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.uniform(-20, 20, (n, 3)), rng.uniform(0, 1, (n, 1))], axis=1)


def load(folder):
    return SemanticKITTI([folder])[0]


def test_truncated_bin(tmp_path):
    seq = write_kitti_sequence(tmp_path / "00", [scan()])
    path = seq / "velodyne/000000.bin"
    path.write_bytes(path.read_bytes()[:-6])
    with pytest.raises(DataError, match=r"000000\.bin: truncated or misshapen: 1594 bytes"):
        load(seq)


def test_misshapen_label_and_count_mismatch(tmp_path):
    seq = write_kitti_sequence(tmp_path / "00", [scan()], [np.full(100, 40)])
    label = seq / "labels/000000.label"
    label.write_bytes(label.read_bytes()[:-2])
    with pytest.raises(DataError, match=r"000000\.label: truncated"):
        load(seq)
    np.full(99, 40, np.uint32).tofile(label)
    with pytest.raises(DataError, match=r"000000\.label: label/point count mismatch: 99 labels for 100 points"):
        load(seq)


def test_nan_and_inf_coordinates(tmp_path):
    points = scan()
    points[7, 1] = np.nan
    points[9, 2] = np.inf
    seq = write_kitti_sequence(tmp_path / "00", [points])
    with pytest.raises(DataError, match=r"000000\.bin: 2 of 100 points have NaN or inf coordinates \(first at row 7\)"):
        load(seq)


def test_nan_intensity_and_points_light_years_away(tmp_path):
    points = scan()
    points[3, 3] = np.nan
    seq = write_kitti_sequence(tmp_path / "00", [points])
    with pytest.raises(DataError, match=r"000000\.bin: 1 of 100 points have a NaN or inf intensity \(first at row 3\)"):
        load(seq)
    points = scan()
    points[5, 0] = 3e9
    seq = write_kitti_sequence(tmp_path / "01", [points])
    with pytest.raises(DataError, match=r"000000\.bin: the scan spans 3e\+09 m \(1 points lie over"):
        load(seq)


def test_empty_scan(tmp_path):
    seq = write_kitti_sequence(tmp_path / "00", [np.zeros((0, 4))])
    with pytest.raises(DataError, match=r"000000\.bin: empty scan"):
        load(seq)


def test_missing_calibration_key(tmp_path):
    seq = write_kitti_sequence(tmp_path / "00", [scan()])
    calib = seq / "calib.txt"
    calib.write_text("\n".join(l for l in calib.read_text().splitlines() if not l.startswith("Tr")))
    with pytest.raises(DataError, match=r"calib\.txt: missing calibration key 'Tr'"):
        load(seq)
    calib.write_text("P2: 1 2 3\nTr: " + " ".join(["0"] * 12))
    with pytest.raises(DataError, match=r"calib\.txt: P2 has 3 values, expected 12 \(3x4\)"):
        load(seq)


def test_missing_image_and_unexpected_size(tmp_path):
    image = np.zeros((32, 64, 3), np.uint8)
    seq = write_kitti_sequence(tmp_path / "00", [scan(), scan(seed=1)], images=[image],
                               calib_extra="S2: 64 32\n")
    assert load(seq).cameras[0].load_image().shape == (32, 64, 3)
    with pytest.raises(DataError, match=r"image_2/000001\.png: missing image"):
        SemanticKITTI([seq])[1]
    from PIL import Image

    Image.fromarray(np.zeros((30, 60, 3), np.uint8)).save(seq / "image_2/000001.png")
    with pytest.raises(DataError, match=r"000001\.png: image of unexpected size 60x30, expected 64x32"):
        SemanticKITTI([seq])[1]


def test_images_must_agree_within_a_sequence(tmp_path):
    images = [np.zeros((32, 64, 3), np.uint8), np.zeros((31, 64, 3), np.uint8)]
    seq = write_kitti_sequence(tmp_path / "00", [scan(), scan(seed=1)], images=images)
    dataset = SemanticKITTI([seq])
    assert dataset[0].cameras[0].image_size == (64, 32)
    with pytest.raises(DataError, match="unexpected size 64x31, expected 64x32"):
        dataset[1]


def test_unknown_class_name_in_split():
    with pytest.raises(ConfigError, match="unknown class name 'lorry truck'"):
        Vocabulary.load("semantickitti").split(unseen=["truck", "lorry truck"])


def test_cli_prints_a_message_not_a_traceback(tmp_path, capsys):
    seq = write_kitti_sequence(tmp_path / "00", [scan()])
    (seq / "velodyne/000000.bin").write_bytes(b"\0" * 10)
    assert main(["data", "inspect", str(seq)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zeroseg3d: error: ") and "000000.bin: truncated" in err
    assert "Traceback" not in err
    assert main(["data", "inspect", str(tmp_path / "nothing-here")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_scans_without_labels_or_images_still_load(tmp_path):
    seq = write_kitti_sequence(tmp_path / "00", [scan()])
    frame = load(seq)
    assert frame.labels is None and frame.cameras[0].image_path is None
    assert frame.cameras[0].image_size == (1241, 376)


def test_teacher_settings_are_checked_when_the_config_loads():
    from zeroseg3d.config import load_config

    clear = load_config(None, ["teacher.readout=clearclip"]).teacher
    assert (clear.readout, clear.value_residual) == ("value", False)
    mask = load_config(None, ["teacher.readout=maskclip"]).teacher
    assert (mask.readout, mask.value_residual) == ("value", True)
    for override, message in [("teacher.readout=bogus", "teacher.readout must be"),
                              ("teacher.short_side=0", "teacher.short_side must be a positive integer"),
                              ("teacher.precision=fp8", "teacher.precision must be"),
                              ("teacher.batch_size=0", "teacher.batch_size must be >= 1")]:
        with pytest.raises(ConfigError, match=message):
            load_config(None, [override])


def test_command_line_numbers_and_devices_are_checked(capsys):
    import torch

    from zeroseg3d.utils.device import resolve_device

    for args, message in [(["teacher", "x.yaml", "--shard", "abc"], "is not I/K"),
                          (["teacher", "x.yaml", "--shard", "1/0"], "need 1 <= I <= K"),
                          (["teacher", "x.yaml", "--shard", "5/4"], "need 1 <= I <= K"),
                          (["world", "generate", "--out", "w", "--frames", "0"], "must be at least 1"),
                          (["demo", "--seed", "-1"], "must be at least 0")]:
        with pytest.raises(SystemExit) as stop:
            main(args)
        assert stop.value.code == 2 and message in capsys.readouterr().err, args
    with pytest.raises(ConfigError, match="unknown device 'tpu0'"):
        resolve_device("tpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU is visible"):
            resolve_device("cuda")


def test_config_vocabulary_and_sidecar_text_is_checked(tmp_path):
    import time

    from zeroseg3d.config import load_config

    cases = {
        "base.yaml": (b"_base_: 123\n", "_base_ must name a config file or a list of them, not 123"),
        "utf8.yaml": (b"run:\n  name: \xff\xfe\n", r"not UTF-8 text \(byte 13"),
        # nested aliases expand exponentially: refused at the first alias, in no time
        "bomb.yaml": (b'a: &a ["x", "x"]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n'
                      b"c: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n", r"aliases \(\*name\) are not allowed here \(line 2"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        start = time.monotonic()
        with pytest.raises(ConfigError, match=message):
            load_config(tmp_path / name)
        assert time.monotonic() - start < 2
    (tmp_path / "vocab.yaml").write_bytes(b"name: v\nclasses:\n- {name: car\xff}\n")
    with pytest.raises(ConfigError, match=r"vocab\.yaml: not UTF-8 text"):
        Vocabulary.load(tmp_path / "vocab.yaml")


def test_a_sequence_with_fewer_poses_than_scans_is_refused_when_opened(tmp_path):
    """Not when training reaches the first scan without a pose, hours in."""
    folder = write_kitti_sequence(tmp_path / "00", [scan(seed=i) for i in range(3)])
    identity = "1 0 0 0 0 1 0 0 0 0 1 0\n"
    (folder / "poses.txt").write_text(identity * 2)
    with pytest.raises(DataError, match=r"poses.txt: 2 poses but scan 000002.bin is frame 2"):
        SemanticKITTI([folder])
    (folder / "poses.txt").write_text(identity * 3)
    assert SemanticKITTI([folder])[2].pose.shape == (4, 4)


def test_a_labels_folder_that_lacks_some_scans_is_said(tmp_path):
    folder = write_kitti_sequence(tmp_path / "00", [scan(seed=i) for i in range(3)],
                                  [np.full(100, 40, np.uint32)] * 3)
    (folder / "labels" / "000001.label").unlink()
    with pytest.warns(UserWarning, match=r"labels: no labels for 1 of 3 scans \(first 000001.bin\)"):
        dataset = SemanticKITTI([folder])
    assert dataset[1].labels is None and dataset[0].labels is not None


def test_the_command_line_says_its_warnings_in_one_line(tmp_path, capsys):
    import warnings

    folder = write_kitti_sequence(tmp_path / "00", [scan(seed=i) for i in range(2)], [np.full(100, 40, np.uint32)])
    shown = warnings.showwarning
    assert main(["data", "inspect", str(folder)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["zeroseg3d: warning: " + str(folder / "labels") + ": no labels for 1 of 2 scans (first "
                   "000001.bin); they load without labels"], err
    assert warnings.showwarning is shown   # the caller's display is back
