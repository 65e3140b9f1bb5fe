"""LAS/LAZ files: every version and point format laspy writes reads back to the same
coordinates, and damage in LASzip's chunk table is refused in one line, without the Rust
panic (a backtrace on stderr) or process abort that lazrs gave on it."""

import io

import numpy as np
import pytest

from zeroseg3d.datasets.io import read_points
from zeroseg3d.errors import ZeroSeg3DError

XYZ = np.random.default_rng(0).normal(0, 20, (3000, 3))
XYZ[:, 2] /= 10


def las_bytes(version: str, point_format: int, compressed: bool, extra: bool = False, offset=(0.0, 0.0, 0.0)) -> bytes:
    import laspy

    header = laspy.LasHeader(point_format=point_format, version=version)
    if extra:
        header.add_extra_dim(laspy.ExtraBytesParams(name="label", type=np.uint16))
    header.scales, header.offsets = [0.001] * 3, list(offset)
    data = laspy.LasData(header)
    data.x, data.y, data.z = (XYZ[:, i] + offset[i] for i in range(3))
    data.intensity = np.arange(len(XYZ), dtype=np.uint16) * 20
    buffer = io.BytesIO()
    data.write(buffer, do_compress=compressed)
    return buffer.getvalue()


@pytest.mark.parametrize("version, point_format", [("1.2", 0), ("1.2", 3), ("1.3", 5), ("1.4", 6), ("1.4", 8),
                                                   ("1.4", 10), ("1.5", 7)])
@pytest.mark.parametrize("compressed", [False, True], ids=["las", "laz"])
def test_las_versions_and_formats_read_back(tmp_path, version, point_format, compressed):
    path = tmp_path / f"scan{'.laz' if compressed else '.las'}"
    path.write_bytes(las_bytes(version, point_format, compressed, extra=point_format in (3, 6),
                               offset=(500_000.0, 5_400_000.0, 100.0)))
    points, labels, origin = read_points(path)
    assert labels is None and len(points) == len(XYZ)
    np.testing.assert_allclose(points[:, :3] + origin, XYZ + [500_000.0, 5_400_000.0, 100.0], atol=1e-3)
    assert 0 <= points[:, 3].min() and points[:, 3].max() <= 1 and points[:, 3].argmax() == len(XYZ) - 1


def test_las_1_0_reads(tmp_path):
    data = bytearray(las_bytes("1.2", 1, False))
    data[25] = 0  # LAS 1.0 shares 1.2's header; laspy reads it but no longer writes it
    path = tmp_path / "old.las"
    path.write_bytes(bytes(data))
    np.testing.assert_allclose(read_points(path)[0][:, :3], XYZ, atol=1e-3)


def test_every_value_of_the_chunk_table_bytes_is_read_or_refused_cleanly(tmp_path, capfd):
    """The chunk table ends the file; a damaged entry made lazrs panic with 'capacity overflow'
    or abort on a failed allocation (a 431-byte file with one byte changed)."""
    data = las_bytes("1.2", 3, True)
    path = tmp_path / "scan.laz"
    outcomes = set()
    for position in range(len(data) - 8, len(data)):
        for value in range(256):
            path.write_bytes(data[:position] + bytes([value]) + data[position + 1:])
            try:
                points, _, _ = read_points(path)
                outcomes.add("read")
                assert len(points) == len(XYZ)
            except ZeroSeg3DError as error:
                outcomes.add("refused")
                assert "\n" not in str(error) and str(path) in str(error)
    assert outcomes == {"read", "refused"}
    captured = capfd.readouterr()
    assert "panicked" not in captured.err and "memory allocation" not in captured.err


@pytest.mark.parametrize("suffix", [".las", ".laz"])
def test_a_prediction_written_as_las_reads_back_in_laspy_and_zeroseg3d(tmp_path, suffix):
    import json

    import laspy

    from zeroseg3d.datasets.las import write_las
    from zeroseg3d.engine.export import palette

    names = ["road", "traffic-sign", "fire hydrant", "véhicule électrique à deux roues"]
    rng = np.random.default_rng(1)
    labels = rng.integers(0, len(names), len(XYZ))
    confidence = rng.random(len(XYZ)).astype(np.float32)
    origin = np.array([512_345.0, 5_412_345.0, 231.0])
    points = np.concatenate([XYZ, rng.random((len(XYZ), 1))], axis=1).astype(np.float32)
    path = tmp_path / f"scan{suffix}"
    write_las(path, points, labels, names, palette(names), confidence, origin)

    las = laspy.read(path)
    assert (las.header.version.major, las.header.version.minor, las.header.point_format.id) == (1, 4, 7)
    assert las.header.are_points_compressed == (suffix == ".laz")
    np.testing.assert_allclose(np.stack([las.x, las.y, las.z], axis=1), points[:, :3] + origin, atol=6e-4)
    np.testing.assert_array_equal(np.asarray(las.classification), labels)
    np.testing.assert_array_equal(np.asarray(las.red), palette(names)[labels, 0].astype(np.uint16) * 257)
    np.testing.assert_array_equal(np.asarray(las.confidence), confidence)
    np.testing.assert_allclose(np.asarray(las.intensity) / 65535, points[:, 3], atol=1e-5)
    lookup = las.header.vlrs.get("ClassificationLookupVlr")[0]
    assert [lookup[i] for i in range(4)] == ["road", "traffic sign", "fire hydrant", "v hicule  lectr"]
    stored = [vlr for vlr in las.header.vlrs if vlr.user_id == "zeroseg3d"]
    assert json.loads(stored[0].record_data)["classes"] == names

    again, _, read_origin = read_points(path)   # and zeroseg3d reads its own output as a scan
    np.testing.assert_allclose(again[:, :3] + read_origin, points[:, :3] + origin, atol=6e-4)


def test_more_classes_than_a_las_classification_holds_are_refused_before_inference():
    from zeroseg3d.engine.export import dataset_raw_ids
    from zeroseg3d.errors import ConfigError

    names = [f"class {i}" for i in range(257)]
    with pytest.raises(ConfigError, match="laz stores at most 256 classes"):
        dataset_raw_ids(names, "laz")
    assert dataset_raw_ids(names[:256], "las") is None and dataset_raw_ids(names, "ply") is None


def test_damaged_compressed_points_are_named_as_such(tmp_path):
    """LAZ has no checksum: a changed byte inside the arithmetic-coded points makes the decoder
    lose step (it runs past its chunk) or decode a scan of absurd coordinates; both refused."""
    data = las_bytes("1.2", 3, True)
    path = tmp_path / "scan.laz"
    messages = []
    for at in range(len(data) // 3, 2 * len(data) // 3, len(data) // 40):
        path.write_bytes(data[:at] + bytes([data[at] ^ 0x5A]) + data[at + 1:])
        try:
            read_points(path)
            messages.append("read")
        except ZeroSeg3DError as error:
            messages.append(str(error).split(": ", 1)[1])
    assert any(m.startswith("damaged LAZ: the compressed points do not decode (lazrs:") for m in messages), messages
    assert all(m.startswith(("damaged LAZ", "the scan spans", "read")) for m in messages), messages


@pytest.mark.parametrize("version, point_format, suffix", [("1.2", 3, ".las"), ("1.4", 6, ".laz")])
def test_a_prediction_of_a_las_scan_is_a_copy_of_it_with_the_classes(tmp_path, version, point_format, suffix):
    """Every attribute, VLR and stored coordinate of the user's file survives; formats 0-5 become
    their LAS 1.4 counterparts (a one-byte classification); the prediction fills classification
    (named) and confidence."""
    import laspy

    from zeroseg3d.datasets.las import write_las
    from zeroseg3d.engine.export import palette

    header = laspy.LasHeader(point_format=point_format, version=version)
    header.add_extra_dim(laspy.ExtraBytesParams(name="reflectance", type=np.float32))
    header.scales, header.offsets = [0.01] * 3, [500_000.0, 5_400_000.0, 0.0]
    header.vlrs.append(laspy.VLR("survey", 7, "the user's own", b"kept"))
    original = laspy.LasData(header)
    original.x, original.y, original.z = XYZ[:, 0] + 500_000, XYZ[:, 1] + 5_400_000, XYZ[:, 2]
    original.gps_time = np.arange(len(XYZ)) * 0.5
    original.return_number = np.arange(len(XYZ)) % 3 + 1
    original.classification = np.full(len(XYZ), 2, np.uint8)
    original.reflectance = np.linspace(0, 1, len(XYZ), dtype=np.float32)
    if point_format == 3:
        original.red = np.arange(len(XYZ), dtype=np.uint16)
    scan = tmp_path / f"survey{suffix}"
    original.write(scan)

    points, _, origin = read_points(scan)
    names = ["ground", "building", "tree"]
    labels = np.arange(len(XYZ)) % 3
    confidence = np.full(len(XYZ), 0.75, np.float32)
    out = tmp_path / "predicted.laz"
    write_las(out, points, labels, names, palette(names), confidence, origin, source=scan)

    las = laspy.read(out)
    assert (las.header.version.minor, las.header.point_format.id) == (4, 7 if point_format == 3 else 6)
    for name in ("X", "Y", "Z", "gps_time", "return_number", "reflectance") + (("red",) if point_format == 3 else ()):
        np.testing.assert_array_equal(np.asarray(getattr(las, name)), np.asarray(getattr(original, name)), name)
    np.testing.assert_array_equal(np.asarray(las.classification), labels)
    np.testing.assert_array_equal(np.asarray(las.confidence), confidence)
    assert las.header.scales.tolist() == [0.01] * 3 and las.header.offsets.tolist() == [500_000.0, 5_400_000.0, 0.0]
    assert [v.record_data for v in las.header.vlrs if v.user_id == "survey"] == [b"kept"]
    lookups = las.header.vlrs.get("ClassificationLookupVlr")
    assert len(lookups) == 1 and [lookups[0][i] for i in range(3)] == names
    # predicted again over its own output: the names are replaced, not added
    write_las(out, points, labels[::-1].copy(), ["a", "b", "c"], palette(names), confidence, origin, source=out)
    assert [laspy.read(out).header.vlrs.get("ClassificationLookupVlr")[0][i] for i in range(3)] == ["a", "b", "c"]


def test_a_confidence_of_the_users_own_is_kept_beside_the_predictions(tmp_path):
    import laspy

    from zeroseg3d.datasets.las import write_las
    from zeroseg3d.engine.export import palette

    header = laspy.LasHeader(point_format=6, version="1.4")
    header.add_extra_dim(laspy.ExtraBytesParams(name="confidence", type=np.uint8))
    scan = laspy.LasData(header)
    scan.x, scan.y, scan.z = XYZ.T
    scan.confidence = np.full(len(XYZ), 200, np.uint8)
    scan.write(tmp_path / "scan.las")
    points, _, origin = read_points(tmp_path / "scan.las")
    write_las(tmp_path / "out.las", points, np.zeros(len(XYZ), np.int64), ["road"], palette(["road"]),
              np.full(len(XYZ), 0.25, np.float32), origin, source=tmp_path / "scan.las")
    out = laspy.read(tmp_path / "out.las")
    assert (np.asarray(out.confidence) == 200).all() and (np.asarray(out.zeroseg3d_confidence) == 0.25).all()
