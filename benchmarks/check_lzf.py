"""zeroseg3d's LZF decoder (PCD binary_compressed) against liblzf itself, and the time to read
a PCL-style binary_compressed scan. Needs python-lzf, which has no wheels (a C compiler
builds it from its sdist: ``pip install --target DIR python-lzf``, then PYTHONPATH=DIR).
Writes benchmarks/results/lzf.json.

    PYTHONPATH=/tmp/lzf python benchmarks/check_lzf.py
"""

from __future__ import annotations

import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import write_result


def main() -> str:
    try:
        import lzf
    except ImportError:
        raise SystemExit("python-lzf is not installed (see this file's docstring)") from None
    from zeroseg3d.datasets.io import lzf_decompress, read_points

    rng = np.random.default_rng(0)
    checked = 0
    for trial in range(200):
        size = int(rng.integers(1, 50_000))
        data = [rng.integers(0, 256, size, dtype=np.uint8).tobytes(), rng.integers(0, 3, size, dtype=np.uint8).tobytes(),
                bytes(size), np.round(rng.normal(0, 20, size // 4 + 1), 1).astype(np.float32).tobytes()][trial % 4]
        packed = lzf.compress(data)
        if packed is None:   # liblzf gives up on data it cannot shrink
            continue
        if lzf_decompress(packed, len(data), Path("check")) != data:
            raise SystemExit(f"buffer {trial} ({len(data)} bytes) decoded differently from liblzf")
        checked += 1

    # a scan as PCL writes it: aligned padding fields and a 3-valued field, stored field by field
    points = 120_000
    fields = [("x", "F", 4, 1, rng.normal(0, 20, points).astype("<f4")),
              ("y", "F", 4, 1, rng.normal(0, 20, points).astype("<f4")),
              ("z", "F", 4, 1, rng.normal(0, 2, points).astype("<f4")), ("_", "U", 1, 4, np.zeros((points, 4), "u1")),
              ("intensity", "F", 4, 1, rng.random(points).astype("<f4")),
              ("ring", "U", 2, 1, rng.integers(0, 64, points).astype("<u2")),
              ("normal", "F", 4, 3, rng.normal(size=(points, 3)).astype("<f4"))]
    header = "".join(f"{key} {' '.join(str(f[i]) for f in fields)}\n" for key, i in
                     (("FIELDS", 0), ("SIZE", 2), ("TYPE", 1), ("COUNT", 3)))
    header = f"VERSION 0.7\n{header}WIDTH {points}\nHEIGHT 1\nPOINTS {points}\nDATA binary_compressed\n"
    body = b"".join(np.ascontiguousarray(f[4]).tobytes() for f in fields)
    packed = lzf.compress(body)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pcl.pcd"
        path.write_bytes(header.encode() + struct.pack("<II", len(packed), len(body)) + packed)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            scan, _, _ = read_points(path)
            times.append(time.perf_counter() - start)
    np.testing.assert_array_equal(scan[:, 0], fields[0][4])
    result = {"buffers_matching_liblzf": checked, "scan_points": points, "scan_bytes": len(body),
              "compressed_bytes": len(packed), "read_s": times, "read_median_s": float(np.median(times))}
    write_result("lzf", result)
    return (f"LZF: {checked} liblzf buffers decoded the same; a {points}-point binary_compressed PCD read in "
            f"{np.median(times) * 1000:.0f} ms (median of 5)")


if __name__ == "__main__":
    sys.exit(print(main()))
