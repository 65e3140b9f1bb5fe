"""Hostile inputs, generated: random bytes, truncations and byte mutations of valid files of
every kind the tool reads. Each reader either returns valid data or raises the project's own
error whose message is one line naming the file; nothing else escapes (no traceback reaches
a user)."""

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zeroseg3d.datasets.io import (read_image, read_image_size, read_label_file, read_ply,
                                  read_points, write_ply)
from zeroseg3d.datasets.vocabulary import Vocabulary
from zeroseg3d.errors import ZeroSeg3DError

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
POINTS = np.array([[1.0, 2.0, 0.5, 0.1], [3.0, -1.0, 0.2, 0.9], [-2.0, 4.0, 1.5, 0.4],
                   [0.5, 0.5, -1.0, 0.0], [5.0, 1.0, 0.0, 1.0]], np.float32)


def _ply_ascii() -> bytes:
    rows = "\n".join(" ".join(f"{v:g}" for v in p) + " 3" for p in POINTS)
    return (f"ply\nformat ascii 1.0\nelement vertex {len(POINTS)}\nproperty float x\nproperty float y\n"
            f"property float z\nproperty float intensity\nproperty int label\nend_header\n{rows}\n").encode()


def _ply_binary(tmp_path) -> bytes:
    path = tmp_path / "valid.ply"
    write_ply(path, POINTS, labels=np.arange(len(POINTS)))
    return path.read_bytes()


def _pcd(binary: bool) -> bytes:
    header = (f"# .PCD v0.7\nVERSION 0.7\nFIELDS x y z intensity\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\n"
              f"WIDTH {len(POINTS)}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {len(POINTS)}\n")
    if binary:
        return (header + "DATA binary\n").encode() + POINTS.tobytes()
    return (header + "DATA ascii\n" + "\n".join(" ".join(f"{v:g}" for v in p) for p in POINTS) + "\n").encode()


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _png(size=(8, 6)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), 90, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _las(tmp_path, suffix=".las", offset=(0.0, 0.0, 0.0), intensity=None) -> bytes:
    import laspy

    las = laspy.LasData(laspy.LasHeader(point_format=3, version="1.2"))
    las.header.offsets, las.header.scales = list(offset), [0.001, 0.001, 0.001]
    las.x, las.y, las.z = (POINTS[:, i].astype(np.float64) + offset[i] for i in range(3))
    las.intensity = (POINTS[:, 3] * 65535).astype(np.uint16) if intensity is None else intensity
    path = tmp_path / f"valid{suffix}"
    las.write(path)
    return path.read_bytes()


def _pcl_pcd(tmp_path, mode: str) -> bytes:
    from test_custom_scans import write_pcd

    path = tmp_path / f"{mode}.pcd"
    write_pcd(path, POINTS, np.arange(len(POINTS), dtype=np.uint32), mode)
    return path.read_bytes()


def valid_files(tmp_path) -> dict[str, bytes]:
    """One valid file per format (name -> bytes)."""
    labelled = np.concatenate([POINTS, np.arange(len(POINTS), dtype=np.float32)[:, None]], axis=1)
    return {"scan.bin": POINTS.tobytes(), "scan.npy": _npy(POINTS), "labelled.npy": _npy(labelled),
            "ascii.ply": _ply_ascii(), "binary.ply": _ply_binary(tmp_path), "ascii.pcd": _pcd(False),
            "binary.pcd": _pcd(True), "compressed.pcd": _pcl_pcd(tmp_path, "binary_compressed"),
            "padded.pcd": _pcl_pcd(tmp_path, "padded"), "scan.las": _las(tmp_path), "scan.laz": _las(tmp_path, ".laz")}


# a mutation: (kind, position, bytes), applied in order
MUTATIONS = st.lists(st.tuples(st.sampled_from(["truncate", "set", "insert", "delete"]), st.integers(0, 1 << 20),
                               st.binary(min_size=1, max_size=12)), min_size=1, max_size=4)
# bytes that break parsers more often than random ones: digits, signs, separators, huge numbers
TOKENS = st.sampled_from([b"-1", b"0", b"1e30", b"nan", b"inf", b"100000000000", b"\xff\xfe", b"\n", b" ",
                          b"abc", b"1.5", b"-0", b"binary", b"ascii", b"\x00" * 4, b"end_header", b"list"])


def mutate(data: bytes, mutations) -> bytes:
    for kind, position, payload in mutations:
        at = position % (len(data) + 1)
        if kind == "truncate":
            data = data[:at]
        elif kind == "set":
            data = data[:at] + payload + data[at + len(payload):]
        elif kind == "insert":
            data = data[:at] + payload + data[at:]
        else:
            data = data[:at] + data[at + len(payload):]
    return data


def expect_clean(path, read):
    """Run ``read(path)``: its result, or None after a one-line error naming the file."""
    try:
        return read(path)
    except ZeroSeg3DError as error:
        message = str(error)
        assert "\n" not in message, message
        assert str(path) in message, message
        return None


def check_points_result(result):
    if result is None:
        return
    points, labels, origin = result
    assert origin.shape == (3,) and np.isfinite(origin).all()
    assert points.dtype == np.float32 and points.ndim == 2 and points.shape[1] == 4 and len(points) > 0
    assert np.isfinite(points).all()
    if labels is not None:
        assert labels.shape == (len(points),) and labels.dtype == np.int64


@pytest.mark.parametrize("name", ["scan.bin", "scan.npy", "labelled.npy", "ascii.ply", "binary.ply", "ascii.pcd",
                                  "binary.pcd", "compressed.pcd", "padded.pcd", "scan.las", "scan.laz"])
@FUZZ
@given(mutations=MUTATIONS, token=TOKENS)
def test_mutated_point_files_are_read_or_refused_in_one_line(tmp_path, name, mutations, token):
    data = valid_files(tmp_path)[name]
    path = tmp_path / name
    # half the mutations write a parser-hostile token instead of random bytes
    mutations = [(kind, position, token if position % 2 else payload) for kind, position, payload in mutations]
    path.write_bytes(mutate(data, mutations))
    check_points_result(expect_clean(path, read_points))


@pytest.mark.parametrize("suffix", [".bin", ".npy", ".ply", ".pcd", ".las", ".laz"])
@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes_as_point_files(tmp_path, suffix, data):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(data)
    check_points_result(expect_clean(path, read_points))


@FUZZ
@given(data=st.binary(max_size=64))
def test_random_bytes_as_label_files(tmp_path, data):
    path = tmp_path / "scan.label"
    path.write_bytes(data)
    labels = expect_clean(path, lambda p: read_label_file(p, 5))
    assert labels is None or labels.shape == (5,)


@FUZZ
@given(mutations=MUTATIONS)
def test_mutated_images_are_read_or_refused_in_one_line(tmp_path, mutations):
    path = tmp_path / "image.png"
    path.write_bytes(mutate(_png(), mutations))
    size = expect_clean(path, read_image_size)
    image = expect_clean(path, lambda p: read_image(p, size))
    if image is not None:
        assert image.dtype == np.uint8 and image.shape[2] == 3 and (image.shape[1], image.shape[0]) == size


def test_an_image_header_claiming_a_huge_size_is_refused_before_decoding(tmp_path):
    import struct
    import zlib

    data = bytearray(_png())
    # IHDR's width and height (bytes 16-24), then its CRC, so that only the size is wrong
    data[16:24] = struct.pack(">II", 100000, 100000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path = tmp_path / "huge.png"
    path.write_bytes(bytes(data))
    for read in (read_image_size, read_image):
        with pytest.raises(ZeroSeg3DError, match="too large|100000x100000") as error:
            read(path)
        assert "unreadable" not in str(error.value)
    # under Pillow's own bomb limit, still far beyond any camera
    data[16:24] = struct.pack(">II", 20000, 6000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    with pytest.raises(ZeroSeg3DError, match="20000x6000"):
        read_image_size(path)


CALIB = ("P0: 700 0 600 0 0 700 180 0 0 0 1 0\nP2: 700 0 600 45 0 700 180 0 0 0 1 0.003\n"
         "Tr: 0 -1 0 0 0 0 -1 -0.08 1 0 0 -0.27\n")
POSES = "1 0 0 0 0 1 0 0 0 0 1 0\n1 0 0 0 0 1 0 0 0 0 1 0.8\n"


def _sequence(folder, calib: bytes, poses: bytes, labels: bytes | None = None, image: bytes | None = None):
    (folder / "velodyne").mkdir(parents=True, exist_ok=True)
    (folder / "velodyne" / "000000.bin").write_bytes(POINTS.tobytes())
    (folder / "calib.txt").write_bytes(calib)
    (folder / "poses.txt").write_bytes(poses)
    if labels is not None:
        (folder / "labels").mkdir(exist_ok=True)
        (folder / "labels" / "000000.label").write_bytes(labels)
    if image is not None:
        (folder / "image_2").mkdir(exist_ok=True)
        (folder / "image_2" / "000000.png").write_bytes(image)


def _load_sequence(folder):
    from zeroseg3d.datasets.semantickitti import SemanticKITTISequence

    sequence = SemanticKITTISequence(folder, Vocabulary.load("semantickitti"))
    return sequence.load(0)


def _check_frame(frame):
    if frame is None:
        return
    assert np.isfinite(frame.points).all()
    for camera in frame.cameras:
        assert np.isfinite(camera.K).all() and np.isfinite(camera.T_cam_from_lidar).all()
        assert all(isinstance(v, int) and v > 0 for v in camera.image_size)
    if frame.pose is not None:
        assert np.isfinite(frame.pose).all()


@pytest.mark.parametrize("target", ["calib", "poses", "labels", "image"])
@FUZZ
@given(mutations=MUTATIONS, token=TOKENS)
def test_mutated_sequence_files_are_read_or_refused_in_one_line(tmp_path, target, mutations, token):
    import shutil

    folder = tmp_path / "sequences" / "00"
    shutil.rmtree(folder, ignore_errors=True)
    mutations = [(kind, position, token if position % 2 else payload) for kind, position, payload in mutations]
    files = {"calib": CALIB.encode(), "poses": POSES.encode(),
             "labels": np.array([10, 40, 50, 70, 80], np.uint32).tobytes(), "image": _png((64, 20))}
    files[target] = mutate(files[target], mutations)
    _sequence(folder, files["calib"], files["poses"], files["labels"], files["image"])
    try:
        frame = _load_sequence(folder)
    except ZeroSeg3DError as error:
        assert "\n" not in str(error) and str(folder) in str(error), str(error)
        return
    _check_frame(frame)


SIDECAR = """cameras:
  - name: front
    K: [[500, 0, 320], [0, 500, 240], [0, 0, 1]]
    T_cam_from_lidar: [[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]]
    image_size: [640, 480]
"""


@FUZZ
@given(mutations=MUTATIONS, token=TOKENS)
def test_mutated_sidecars_are_read_or_refused_in_one_line(tmp_path, mutations, token):
    from zeroseg3d.datasets.custom import read_scan

    mutations = [(kind, position, token if position % 2 else payload) for kind, position, payload in mutations]
    (tmp_path / "scan.bin").write_bytes(POINTS.tobytes())
    sidecar = tmp_path / "scan.yaml"
    sidecar.write_bytes(mutate(SIDECAR.encode(), mutations))
    try:
        frame = read_scan(tmp_path / "scan.bin", Vocabulary.load("semantickitti"))
    except ZeroSeg3DError as error:
        assert "\n" not in str(error) and str(sidecar) in str(error), str(error)
        return
    _check_frame(frame)


def test_a_nuscenes_sweep_is_recognised_by_name_and_refused_as_kitti_records(tmp_path):
    rng = np.random.default_rng(0)
    sweep = np.concatenate([rng.uniform(-30, 30, (40, 3)), rng.integers(0, 256, (40, 1)),
                            rng.integers(0, 32, (40, 1))], axis=1).astype(np.float32)   # 5 x 40 floats = 50 x 16 bytes
    (tmp_path / "sweep.bin").write_bytes(sweep.tobytes())
    with pytest.raises(ZeroSeg3DError, match=r"not x, y, z, intensity records.*\.pcd\.bin"):
        read_points(tmp_path / "sweep.bin")
    (tmp_path / "sweep.pcd.bin").write_bytes(sweep.tobytes())
    points, _, _ = read_points(tmp_path / "sweep.pcd.bin")
    np.testing.assert_allclose(points[:, :3], sweep[:, :3])
    np.testing.assert_allclose(points[:, 3], sweep[:, 3] / 255.0, rtol=1e-6)


@pytest.mark.parametrize("scale", [1.0, 255.0, 65535.0])
def test_intensity_comes_normalised_to_0_1_from_every_format(tmp_path, scale):
    raw = POINTS.copy()
    raw[:, 3] = np.array([0.0, 0.25, 0.5, 0.75, 1.0]) * scale
    expected = np.array([0.0, 0.25, 0.5, 0.75, 1.0], np.float32)
    write_ply(tmp_path / "scan.ply", raw)
    (tmp_path / "scan.npy").write_bytes(_npy(raw))
    for name in ("scan.ply", "scan.npy"):
        points, _, _ = read_points(tmp_path / name)
        np.testing.assert_allclose(points[:, 3], expected, rtol=1e-6, err_msg=name)
    raw[0, 3] = -1.0
    (tmp_path / "negative.npy").write_bytes(_npy(raw))
    with pytest.raises(ZeroSeg3DError, match="intensities from -1"):
        read_points(tmp_path / "negative.npy")


@pytest.mark.parametrize("suffix", [".las", ".laz"])
def test_las_and_laz_files_are_read_with_intensity_normalised(tmp_path, suffix):
    path = tmp_path / f"scan{suffix}"
    path.write_bytes(_las(tmp_path, suffix))
    points, labels, _ = read_points(path)
    np.testing.assert_allclose(points[:, :3], POINTS[:, :3], atol=1e-3)
    np.testing.assert_allclose(points[:, 3], POINTS[:, 3], atol=1e-4)   # 16-bit intensity / 65535
    assert labels is None
    # georeferenced (UTM-like) coordinates: shifted by their rounded median, millimetres kept
    path.write_bytes(_las(tmp_path, suffix, offset=(500000.0, 5400000.0, 100.0)))
    points, _, _ = read_points(path)
    shift = np.round(np.median(POINTS[:, :3].astype(np.float64) + [500000.0, 5400000.0, 100.0], axis=0))
    np.testing.assert_allclose(points[:, :3], POINTS[:, :3] + [500000.0, 5400000.0, 100.0] - shift, atol=1e-3)


@pytest.mark.parametrize("kind", ["ply", "pcd", "npy"])
def test_georeferenced_doubles_keep_millimetres(tmp_path, kind):
    """UTM coordinates in double precision: float32 steps by 0.5 m at a northing of 5,400 km, so
    they are shifted by their rounded median first, as LAS files are."""
    offset = np.array([500000.0, 5400000.0, 100.0])
    xyz = POINTS[:, :3].astype(np.float64) + offset + 0.0005   # sub-millimetre detail on top
    path = tmp_path / f"utm.{kind}"
    if kind == "npy":
        np.save(path, np.concatenate([xyz, POINTS[:, 3:].astype(np.float64)], axis=1))
    elif kind == "ply":
        rows = "\n".join(f"{x:.4f} {y:.4f} {z:.4f} {i:g}" for (x, y, z), i in zip(xyz, POINTS[:, 3]))
        path.write_text(f"ply\nformat ascii 1.0\nelement vertex {len(xyz)}\nproperty double x\nproperty double y\n"
                        f"property double z\nproperty float intensity\nend_header\n{rows}\n")
    else:
        table = np.empty(len(xyz), dtype=[("xyz", "<f8", 3), ("i", "<f4")])
        table["xyz"], table["i"] = xyz, POINTS[:, 3]
        path.write_bytes((f"VERSION 0.7\nFIELDS x y z intensity\nSIZE 8 8 8 4\nTYPE F F F F\nCOUNT 1 1 1 1\n"
                          f"WIDTH {len(xyz)}\nHEIGHT 1\nPOINTS {len(xyz)}\nDATA binary\n").encode() + table.tobytes())
    points, _, origin = read_points(path)
    np.testing.assert_array_equal(origin, np.round(np.median(xyz, axis=0)))
    np.testing.assert_allclose(points[:, :3], xyz - origin, atol=1e-3)
    np.testing.assert_allclose(points[:, 3], POINTS[:, 3], atol=1e-6)
    # a PLY written with the origin holds the file's own coordinates, in double precision
    write_ply(tmp_path / "out.ply", points, labels=np.arange(len(points)), origin=origin)
    back = read_ply(tmp_path / "out.ply")
    assert back["x"].dtype == np.float64
    np.testing.assert_allclose(np.stack([back["x"], back["y"], back["z"]], 1), xyz, atol=1e-3)
    np.save(tmp_path / "local.npy", POINTS)   # near the origin: nothing shifted
    assert not read_points(tmp_path / "local.npy")[2].any()


@pytest.mark.parametrize("name", ["scan.bin", "binary.ply", "ascii.pcd", "scan.npy"])
@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mutations=MUTATIONS, token=TOKENS)
def test_the_command_line_answers_mutated_scans_with_a_result_or_one_line(tmp_path, capsys, name, mutations, token):
    from zeroseg3d.cli import main

    mutations = [(kind, position, token if position % 2 else payload) for kind, position, payload in mutations]
    path = tmp_path / name
    path.write_bytes(mutate(valid_files(tmp_path)[name], mutations))
    capsys.readouterr()
    code = main(["data", "inspect", str(path)])
    err = capsys.readouterr().err.strip()
    assert code in (0, 2)
    if code == 2:
        assert err.count("\n") == 0 and err.startswith("zeroseg3d: error: ") and str(path) in err, err
