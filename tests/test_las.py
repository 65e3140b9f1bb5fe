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
