"""The user's own scans: .bin, .npy, .ply, .pcd, with label files and camera sidecars."""

import json

import numpy as np
import pytest
import yaml

from zeroseg3d.datasets.custom import CustomScans
from zeroseg3d.datasets.io import read_ply, write_ply
from zeroseg3d.datasets.vocabulary import Vocabulary
from zeroseg3d.errors import DataError

RNG = np.random.default_rng(1)
POINTS = np.concatenate([RNG.uniform(2, 20, (50, 3)), RNG.uniform(0, 1, (50, 1))], axis=1).astype(np.float32)
RAW = np.where(np.arange(50) % 2 == 0, 10, 40).astype(np.uint32)  # car / road raw ids
CAMERA = {"name": "front", "image_size": [128, 64],
          "K": [[100, 0, 64], [0, 100, 32], [0, 0, 1]],
          "T_cam_from_lidar": [[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0]]}


def lzf_literals(data: bytes) -> bytes:
    """Valid LZF of ``data``: literal runs only (a control byte < 32, then that many bytes + 1)."""
    return b"".join(bytes([len(data[i:i + 32]) - 1]) + data[i:i + 32] for i in range(0, len(data), 32))


def write_pcd(path, points, labels, mode):
    """``mode``: ascii, binary, binary_compressed, or padded (binary as PCL writes its aligned
    point types and Ouster's: padding fields named _ and a field of COUNT 3)."""
    n = len(points)
    fields, sizes, types, counts = "x y z intensity label", "4 4 4 4 4", "F F F F U", "1 1 1 1 1"
    if mode == "padded":
        fields, sizes, types, counts = "x y z _ intensity normal label _", "4 4 4 1 4 4 4 1", "F F F U F F U U", \
            "1 1 1 4 1 3 1 2"
    header = (f"VERSION 0.7\nFIELDS {fields}\nSIZE {sizes}\nTYPE {types}\nCOUNT {counts}\nWIDTH {n}\nHEIGHT 1\n"
              f"VIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA {'binary' if mode == 'padded' else mode}\n").encode()
    if mode == "ascii":
        rows = "\n".join(" ".join(f"{v:.6f}" for v in p) + f" {l}" for p, l in zip(points, labels))
        path.write_bytes(header + rows.encode() + b"\n")
    elif mode == "binary":
        table = np.empty(n, dtype=[("p", "<f4", 4), ("l", "<u4")])
        table["p"], table["l"] = points, labels
        path.write_bytes(header + table.tobytes())
    elif mode == "padded":
        table = np.zeros(n, dtype=[("xyz", "<f4", 3), ("pad", "u1", 4), ("i", "<f4"), ("normal", "<f4", 3),
                                   ("l", "<u4"), ("pad2", "u1", 2)])
        table["xyz"], table["i"], table["l"], table["normal"] = points[:, :3], points[:, 3], labels, 7.0
        table["pad"] = 255
        path.write_bytes(header + table.tobytes())
    else:   # PCL's binary_compressed: sizes, then LZF of the fields one after another (all x, all y, ...)
        body = b"".join(np.ascontiguousarray(points[:, i]).astype("<f4").tobytes() for i in range(4))
        body += labels.astype("<u4").tobytes()
        packed = lzf_literals(body)
        path.write_bytes(header + np.array([len(packed), len(body)], "<u4").tobytes() + packed)


@pytest.mark.parametrize("kind", ["bin", "npy", "ply", "pcd_ascii", "pcd_binary", "pcd_binary_compressed",
                                  "pcd_padded", "ply_ascii"])
def test_every_point_format_reads_the_same_scan(tmp_path, kind):
    path = tmp_path / ("scan." + kind.split("_")[0])
    if kind == "bin":
        POINTS.tofile(path)
        RAW.tofile(tmp_path / "scan.label")
    elif kind == "npy":
        np.save(path, np.concatenate([POINTS, RAW[:, None].astype(np.float32)], axis=1))
    elif kind == "ply":
        write_ply(path, POINTS, labels=RAW.astype(np.int32))
    elif kind == "ply_ascii":
        rows = "\n".join(" ".join(f"{v:.6f}" for v in p) + f" {l}" for p, l in zip(POINTS, RAW))
        path.write_text(f"ply\nformat ascii 1.0\nelement vertex {len(POINTS)}\nproperty float x\n"
                        "property float y\nproperty float z\nproperty float intensity\n"
                        f"property uchar label\nelement face 0\nproperty list uchar int vertex_indices\n"
                        f"end_header\n{rows}\n")
    else:
        write_pcd(path, POINTS, RAW, kind.split("_", 1)[1])
    frame = CustomScans([path])[0]
    np.testing.assert_allclose(frame.points, POINTS, atol=1e-5)
    assert frame.frame_id == "scan"
    np.testing.assert_array_equal(frame.labels, np.where(RAW == 10, 0, 8))
    assert frame.cameras == []


def test_intensity_is_read_under_its_usual_names_and_is_zero_without_one(tmp_path):
    from zeroseg3d.datasets.io import read_points

    values = np.arange(50) * 5.0   # 0-245: a 0-255 scale
    for name in ("intensity", "remission", "reflectance", "reflectivity", "scalar_Intensity", "I"):
        path = tmp_path / f"{name}.pcd"
        header = (f"VERSION 0.7\nFIELDS x y z {name}\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\nWIDTH 50\n"
                  "HEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 50\nDATA ascii\n")
        rows = "\n".join(f"{x:.6f} {y:.6f} {z:.6f} {v}" for (x, y, z), v in zip(POINTS[:, :3], values))
        path.write_text(header + rows + "\n")
        np.testing.assert_allclose(read_points(path)[0][:, 3], values / 255, atol=1e-6)
    np.save(tmp_path / "xyz.npy", POINTS[:, :3])
    assert not read_points(tmp_path / "xyz.npy")[0][:, 3].any()


def test_lzf_tokens_unpack_as_liblzf_defines_them():
    """Known answers by the format (a literal run; a copy of length (control >> 5) + 2, or 7 +
    the next byte + 2, from ((control & 31) << 8) + the next byte + 1 bytes back, overlapping
    copies repeating), and PCL's stored sizes checked."""
    from pathlib import Path

    from zeroseg3d.datasets.io import lzf_decompress

    where = Path("x.pcd")
    assert lzf_decompress(b"\x02abc", 3, where) == b"abc"
    assert lzf_decompress(b"\x01ab\x40\x01", 6, where) == b"ababab"          # 4 bytes from 2 back
    assert lzf_decompress(b"\x00a\xe0\x0a\x00", 20, where) == b"a" * 20      # 7 + 10 + 2 from 1 back
    assert lzf_decompress(b"\x03abcd\x20\x03", 7, where) == b"abcdabc"        # 3 bytes from 4 back
    farthest = lzf_literals(bytes(range(251)) * 40) + bytes([0x20 | 31, 255])   # 3 bytes from 8192 back
    assert lzf_decompress(farthest, 10043, where)[-3:] == bytes([(10040 - 8192 + i) % 251 for i in range(3)])
    for damaged, words in [(b"\x05abc", "literal run past the end"), (b"\x00a\x40\x05", "a copy from 6 bytes back"),
                           (b"\x00a\xe0", "cut inside a copy token"), (b"\x02abc", "unpacks to 3 bytes, 4 expected"),
                           (b"\x00a" + b"\xe0\xff\x00" * 2, "cannot unpack")]:
        with pytest.raises(DataError, match=words):
            lzf_decompress(damaged, 4 if words.startswith("unpacks") else (10**6 if words == "cannot unpack" else 30),
                           where)


def test_sidecar_cameras_and_folders(tmp_path):
    from PIL import Image

    for name in ("a", "b"):
        POINTS.tofile(tmp_path / f"{name}.bin")
    Image.fromarray(np.zeros((64, 128, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({"cameras": [{**CAMERA, "image": "a.png"}]}))
    (tmp_path / "cameras.json").write_text(json.dumps({"cameras": [CAMERA]}))
    dataset = CustomScans([tmp_path])
    assert dataset.frame_ids == ["a", "b"]
    a, b = dataset[0], dataset[1]
    assert a.cameras[0].image_path == tmp_path / "a.png" and b.cameras[0].image_path is None
    assert a.cameras[0].T_cam_from_lidar.shape == (4, 4) and b.cameras[0].image_size == (128, 64)
    assert a.labels is None


def test_sidecar_errors_name_the_file(tmp_path):
    POINTS.tofile(tmp_path / "s.bin")
    sidecar = tmp_path / "s.yaml"
    sidecar.write_text(yaml.safe_dump({"cameras": [{k: v for k, v in CAMERA.items() if k != "K"}]}))
    with pytest.raises(DataError, match=r"s\.yaml: camera 'front' lacks K"):
        CustomScans([tmp_path / "s.bin"])[0]
    sidecar.write_text(yaml.safe_dump({"cameras": [{k: v for k, v in CAMERA.items() if k != "image_size"}]}))
    with pytest.raises(DataError, match=r"needs image_size"):
        CustomScans([tmp_path / "s.bin"])[0]
    sidecar.write_text(yaml.safe_dump({"cameras": [{**CAMERA, "image": "missing.png"}]}))
    with pytest.raises(DataError, match=r"missing\.png: missing image"):
        CustomScans([tmp_path / "s.bin"])[0]


def test_bad_point_files(tmp_path):
    ply = tmp_path / "t.ply"
    write_ply(ply, POINTS)
    ply.write_bytes(ply.read_bytes()[:-20])
    with pytest.raises(DataError, match=r"t\.ply: truncated: 50 vertices need 800 bytes"):
        CustomScans([ply])[0]
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match=r"o\.npy: not a plain numeric"):
        CustomScans([tmp_path / "o.npy"])[0]
    np.save(tmp_path / "w.npy", np.zeros((5, 7)))
    with pytest.raises(DataError, match=r"expected an \(N, 3\), \(N, 4\) or \(N, 5\) array"):
        CustomScans([tmp_path / "w.npy"])[0]
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes/x.txt").write_text("1 2 3")
    with pytest.raises(DataError, match=r"notes: no point files"):
        CustomScans([tmp_path / "notes"])


def test_ply_round_trip_with_colours_and_labels(tmp_path):
    colors = RNG.integers(0, 255, (50, 3)).astype(np.uint8)
    write_ply(tmp_path / "c.ply", POINTS, colors=colors, labels=np.arange(50))
    fields = read_ply(tmp_path / "c.ply")
    np.testing.assert_array_equal(np.stack([fields[c] for c in ("red", "green", "blue")], 1), colors)
    np.testing.assert_array_equal(fields["label"], np.arange(50))


def test_class_index_labels_for_a_vocabulary_without_raw_ids(tmp_path):
    np.save(tmp_path / "s.npy", np.concatenate([POINTS, np.full((50, 1), 1.0, np.float32)], axis=1))
    vocab = Vocabulary.from_names(["car", "fire hydrant"])
    assert (CustomScans([tmp_path / "s.npy"], vocab)[0].labels == 1).all()
    np.save(tmp_path / "s.npy", np.concatenate([POINTS, np.full((50, 1), 5.0, np.float32)], axis=1))
    with pytest.raises(DataError, match=r"s\.npy: 50 labels outside 0\.\.1"):
        CustomScans([tmp_path / "s.npy"], vocab)[0]


def test_frame_ids_stay_unique_when_scan_names_do_not(tmp_path):
    """The teacher's cache and the outputs are keyed by frame id: a.bin beside a.npy, or one name
    in two folders, must not share one."""
    for folder in ("day", "night"):
        (tmp_path / folder).mkdir()
        POINTS.tofile(tmp_path / folder / "1532402927.647951.bin")
    np.save(tmp_path / "day" / "1532402927.647951.npy", POINTS)
    assert CustomScans([tmp_path / "night"]).frame_ids == ["1532402927.647951"]
    both = CustomScans([tmp_path / "day", tmp_path / "night", tmp_path / "night"])   # a folder given twice: once
    assert both.frame_ids == ["day/1532402927.647951.bin", "day/1532402927.647951.npy",
                              "night/1532402927.647951.bin"]
    assert [both[i].frame_id for i in range(3)] == both.frame_ids
    assert both.frame_sequences == ["day", "day", "night"]


def test_prediction_files_add_their_suffix_to_names_with_dots(tmp_path):
    from zeroseg3d.engine.export import palette, write_prediction

    names = ["car", "road"]
    for stem in ("1532402927.647951", "1532402927.697951"):
        write_prediction(tmp_path / stem, "ply", POINTS, np.zeros(50, np.int64), names, palette(names))
        write_prediction(tmp_path / stem, "label", POINTS, np.zeros(50, np.int64), names, palette(names))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "1532402927.647951.label", "1532402927.647951.ply", "1532402927.697951.label", "1532402927.697951.ply"]


def _write_scan(path, points, labels):
    if path.suffix == ".pcd":
        write_pcd(path, points, labels, "binary")
    elif path.suffix == ".ply":
        write_ply(path, points, labels=labels.astype(np.int32))
    else:
        np.save(path, np.concatenate([points, labels[:, None].astype(np.float32)], axis=1))


@pytest.mark.parametrize("suffix", [".pcd", ".ply", ".npy"])
def test_an_organized_cloud_is_read_without_its_beams_without_a_return(tmp_path, suffix):
    """PCL and ROS keep a beam without a return in an organized cloud as a point whose x, y and
    z are NaN; those points are left out (with a warning) and the labels stay with their points."""
    points, labels = POINTS.copy(), RAW.copy()
    points[[3, 17, 18], :3] = np.nan
    path = tmp_path / f"organized{suffix}"
    _write_scan(path, points, labels)
    with pytest.warns(UserWarning, match="without 3 of 50 points whose x, y and z are NaN"):
        frame = CustomScans([path])[0]
    keep = np.setdiff1d(np.arange(50), [3, 17, 18])
    np.testing.assert_allclose(frame.points, POINTS[keep], atol=1e-6)
    np.testing.assert_array_equal(frame.labels, np.where(RAW[keep] == 10, 0, 8))
    points[:, :3] = np.nan
    _write_scan(path, points, labels)
    with pytest.raises(DataError, match="all 50 points are NaN"):
        CustomScans([path])[0]
    points = POINTS.copy()
    points[5, 0] = np.nan   # one coordinate missing is damage, not a missing return
    _write_scan(path, points, labels)
    with pytest.raises(DataError, match="1 of 50 points have NaN or inf coordinates"):
        CustomScans([path])[0]
