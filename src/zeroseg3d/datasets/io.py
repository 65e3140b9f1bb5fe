"""Readers of point, label, image and calibration files, each validating what it reads.

Every problem raises :class:`DataError` naming the file; nothing here unpickles.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from zeroseg3d.errors import DataError

POINT_SUFFIXES = (".bin", ".npy", ".ply", ".pcd")
_INTENSITY_NAMES = ("intensity", "remission", "reflectance", "scalar_intensity", "i")
_LABEL_NAMES = ("label", "class", "semantic", "scalar_label")


MAX_EXTENT_M = 10_000.0   # a LiDAR scan spans at most a few hundred metres


def check_points(points: np.ndarray, path: str | Path) -> np.ndarray:
    """(N, 4) float32 with finite values and N > 0, or DataError."""
    if points.ndim != 2 or points.shape[1] != 4:
        raise DataError(path, f"expected points of shape (N, 4), got {points.shape}")
    if points.shape[0] == 0:
        raise DataError(path, "empty scan: no points")
    bad = ~np.isfinite(points[:, :3]).all(axis=1)
    if bad.any():
        raise DataError(
            path, f"{int(bad.sum())} of {len(points)} points have NaN or inf coordinates "
            f"(first at row {int(np.flatnonzero(bad)[0])})"
        )
    bad = ~np.isfinite(points[:, 3])
    if bad.any():
        raise DataError(path, f"{int(bad.sum())} of {len(points)} points have a NaN or inf intensity "
                              f"(first at row {int(np.flatnonzero(bad)[0])})")
    extent = points[:, :3].max(axis=0).astype(np.float64) - points[:, :3].min(axis=0)
    if extent.max() > MAX_EXTENT_M:
        far = np.abs(points[:, :3] - np.median(points[:, :3], axis=0)).max(axis=1) > MAX_EXTENT_M / 2
        raise DataError(path, f"the scan spans {extent.max():.3g} m ({int(far.sum())} points lie over "
                              f"{MAX_EXTENT_M / 2:g} m from its median): coordinates must be metres around one sensor")
    return np.ascontiguousarray(points, dtype=np.float32)


def read_float_records(path: str | Path, columns: int) -> np.ndarray:
    """A raw float32 file of N records of ``columns`` values (KITTI .bin: 4, nuScenes: 5)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "point file not found")
    size = path.stat().st_size
    record = 4 * columns
    if size % record:
        raise DataError(
            path, f"truncated or misshapen: {size} bytes is not a multiple of {record} "
            f"({columns} float32 per point)"
        )
    return np.fromfile(path, dtype=np.float32).reshape(-1, columns)


def read_kitti_bin(path: str | Path) -> np.ndarray:
    return check_points(read_float_records(path, 4), path)


def read_label_file(path: str | Path, num_points: int, dtype=np.uint32) -> np.ndarray:
    """A raw label file with one ``dtype`` value per point, checked against the point count."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "label file not found")
    itemsize = np.dtype(dtype).itemsize
    size = path.stat().st_size
    if size % itemsize:
        raise DataError(path, f"truncated: {size} bytes is not a multiple of {itemsize}")
    if size // itemsize != num_points:
        raise DataError(
            path, f"label/point count mismatch: {size // itemsize} labels for {num_points} points"
        )
    return np.fromfile(path, dtype=dtype)


def split_kitti_label(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SemanticKITTI uint32 labels -> (semantic ids, instance ids)."""
    return raw & 0xFFFF, raw >> 16


# -- generic point files ----------------------------------------------------------------
def read_point_file(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(points (N, 4) float32, labels (N,) or None) from .bin, .npy, .ply or .pcd.

    Files with 3 columns get zero intensity. PLY/PCD labels come from a field named
    label/class/semantic; .npy arrays of shape (N, 5) carry labels in the last column.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "point file not found")
    suffix = path.suffix.lower()
    labels = None
    if suffix == ".bin":
        return read_kitti_bin(path), None
    if suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise DataError(path, f"not a plain numeric .npy array ({exc})") from None
        if array.ndim != 2 or array.shape[1] not in (3, 4, 5):
            raise DataError(path, f"expected an (N, 3), (N, 4) or (N, 5) array, got {array.shape}")
        if array.shape[1] == 5:
            labels = array[:, 4].astype(np.int64)
        xyz_i = array[:, :4] if array.shape[1] >= 4 else _with_zero_intensity(array)
        return check_points(xyz_i.astype(np.float32), path), labels
    if suffix == ".ply":
        fields = read_ply(path)
    elif suffix == ".pcd":
        fields = read_pcd(path)
    else:
        raise DataError(path, f"unsupported point file type {suffix!r}; use one of {POINT_SUFFIXES}")
    return _points_from_fields(fields, path)


def _with_zero_intensity(xyz: np.ndarray) -> np.ndarray:
    return np.concatenate([xyz, np.zeros((len(xyz), 1), xyz.dtype)], axis=1)


def _points_from_fields(fields: dict[str, np.ndarray], path: Path):
    lower = {k.lower(): v for k, v in fields.items()}
    missing = [axis for axis in "xyz" if axis not in lower]
    if missing:
        raise DataError(path, f"missing coordinate fields {missing}; found {sorted(fields)}")
    intensity = next((lower[n] for n in _INTENSITY_NAMES if n in lower), None)
    if intensity is None:
        intensity = np.zeros(len(lower["x"]))
    points = np.stack([lower["x"], lower["y"], lower["z"], intensity], axis=1).astype(np.float32)
    label = next((lower[n] for n in _LABEL_NAMES if n in lower), None)
    return check_points(points, path), None if label is None else label.astype(np.int64)


_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}


def read_ply(path: str | Path) -> dict[str, np.ndarray]:
    """The vertex element of an ascii or binary PLY file as {property: (N,) array}."""
    path = Path(path)
    data = path.read_bytes()
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise DataError(path, "not a PLY file (no 'ply' magic or no 'end_header')")
    header = data[:end].decode("ascii", errors="replace").splitlines()
    body = data[data.index(b"\n", end) + 1:]
    fmt, count, props, in_vertex, seen_vertex = None, 0, [], False, False
    for line in header:
        tokens = line.split()
        if not tokens:
            continue
        if tokens[0] == "format":
            fmt = tokens[1]
        elif tokens[0] == "element":
            if seen_vertex and not in_vertex:
                continue
            in_vertex = tokens[1] == "vertex"
            if in_vertex:
                if props or seen_vertex:
                    raise DataError(path, "the vertex element must come first")
                seen_vertex, count = True, int(tokens[2])
            elif not seen_vertex:
                raise DataError(path, "the vertex element must come first")
        elif tokens[0] == "property" and in_vertex:
            if tokens[1] == "list":
                raise DataError(path, "list properties in the vertex element are not supported")
            if tokens[1] not in _PLY_TYPES:
                raise DataError(path, f"unknown PLY property type {tokens[1]!r}")
            props.append((tokens[2], _PLY_TYPES[tokens[1]]))
    if not seen_vertex:
        raise DataError(path, "no vertex element in PLY header")
    if fmt == "ascii":
        rows = body.decode("ascii", errors="replace").split("\n")[:count]
        try:
            table = np.array([r.split()[: len(props)] for r in rows], dtype=np.float64)
        except ValueError:
            raise DataError(path, "truncated or malformed ascii PLY vertex data") from None
        if table.shape != (count, len(props)):
            raise DataError(path, f"truncated: expected {count} vertices, found {len(table)}")
        return {name: table[:, i] for i, (name, _) in enumerate(props)}
    if fmt not in ("binary_little_endian", "binary_big_endian"):
        raise DataError(path, f"unsupported PLY format {fmt!r}")
    order = "<" if fmt == "binary_little_endian" else ">"
    dtype = np.dtype([(name, order + code) for name, code in props])
    if len(body) < count * dtype.itemsize:
        raise DataError(
            path, f"truncated: {count} vertices need {count * dtype.itemsize} bytes, "
            f"found {len(body)}"
        )
    table = np.frombuffer(body, dtype=dtype, count=count)
    return {name: table[name].astype(np.float64) for name, _ in props}


def write_ply(path: str | Path, points: np.ndarray, colors: np.ndarray | None = None,
              labels: np.ndarray | None = None) -> None:
    """Binary little-endian PLY with x, y, z, intensity and optional RGB and label. Atomic."""
    from zeroseg3d.utils.atomic import atomic_write_bytes

    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4")]
    if colors is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    if labels is not None:
        fields += [("label", "<i4")]
    table = np.empty(len(points), dtype=np.dtype(fields))
    for i, axis in enumerate(("x", "y", "z", "intensity")):
        table[axis] = points[:, i] if points.shape[1] > i else 0.0
    if colors is not None:
        table["red"], table["green"], table["blue"] = colors[:, 0], colors[:, 1], colors[:, 2]
    if labels is not None:
        table["label"] = labels
    ply_types = {"<f4": "float", "u1": "uchar", "<i4": "int"}
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(points)}"]
    header += [f"property {ply_types[code]} {name}" for name, code in fields]
    header.append("end_header")
    atomic_write_bytes(path, ("\n".join(header) + "\n").encode() + table.tobytes())


_PCD_TYPES = {("F", 4): "f4", ("F", 8): "f8", ("I", 1): "i1", ("I", 2): "i2", ("I", 4): "i4",
              ("I", 8): "i8", ("U", 1): "u1", ("U", 2): "u2", ("U", 4): "u4", ("U", 8): "u8"}


def read_pcd(path: str | Path) -> dict[str, np.ndarray]:
    """An ascii or binary PCD file (v0.7) as {field: (N,) array}."""
    path = Path(path)
    data = path.read_bytes()
    header: dict[str, list[str]] = {}
    offset = 0
    while True:
        newline = data.find(b"\n", offset)
        if newline < 0:
            raise DataError(path, "not a PCD file (header has no DATA line)")
        line = data[offset:newline].decode("ascii", errors="replace").strip()
        offset = newline + 1
        if not line or line.startswith("#"):
            continue
        key, *values = line.split()
        header[key.upper()] = values
        if key.upper() == "DATA":
            break
    for key in ("FIELDS", "SIZE", "TYPE", "POINTS"):
        if key not in header:
            raise DataError(path, f"PCD header lacks {key}")
    names, sizes, types = header["FIELDS"], header["SIZE"], header["TYPE"]
    counts = header.get("COUNT", ["1"] * len(names))
    count = int(header["POINTS"][0])
    if any(int(c) != 1 for c in counts):
        raise DataError(path, "PCD fields with COUNT > 1 are not supported")
    try:
        codes = [_PCD_TYPES[(t.upper(), int(s))] for t, s in zip(types, sizes)]
    except KeyError:
        raise DataError(path, f"unsupported PCD field types {list(zip(types, sizes))}") from None
    mode = header["DATA"][0].lower()
    if mode == "ascii":
        rows = data[offset:].decode("ascii", errors="replace").split("\n")[:count]
        try:
            table = np.array([r.split() for r in rows], dtype=np.float64)
        except ValueError:
            raise DataError(path, "truncated or malformed ascii PCD data") from None
        if table.shape != (count, len(names)):
            raise DataError(path, f"truncated: expected {count} points, found {len(table)}")
        return {name: table[:, i] for i, name in enumerate(names)}
    if mode != "binary":
        raise DataError(path, f"PCD DATA {mode!r} is not supported (use ascii or binary)")
    dtype = np.dtype([(n, "<" + c) for n, c in zip(names, codes)])
    if len(data) - offset < count * dtype.itemsize:
        raise DataError(path, f"truncated: {count} points need {count * dtype.itemsize} bytes")
    table = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return {name: table[name].astype(np.float64) for name in names}


# -- images -----------------------------------------------------------------------------
def read_image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the image header, without decoding the pixels."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "missing image")
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(path, f"unreadable image ({exc})") from None


def read_image(path: str | Path, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB; DataError when missing, unreadable or not ``expected_size``."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "missing image")
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(path, f"unreadable or truncated image ({exc})") from None
    check_image_size(path, (array.shape[1], array.shape[0]), expected_size)
    return array


def check_image_size(path, size: tuple[int, int], expected: tuple[int, int] | None) -> None:
    if expected is not None and tuple(size) != tuple(expected):
        raise DataError(
            path, f"image of unexpected size {size[0]}x{size[1]}, expected "
            f"{expected[0]}x{expected[1]} (width x height)"
        )


# -- calibration ------------------------------------------------------------------------
def read_key_value_file(path: str | Path) -> dict[str, np.ndarray]:
    """KITTI-style 'KEY: v1 v2 ...' lines -> {KEY: float64 array}."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "calibration file not found")
    values: dict[str, np.ndarray] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        match = re.match(r"^\s*([^:\s]+)\s*:?\s*(.*)$", line)
        if not match:
            raise DataError(path, f"line {number}: expected 'KEY: values'")
        try:
            values[match.group(1)] = np.array([float(v) for v in match.group(2).split()])
        except ValueError:
            raise DataError(path, f"line {number}: non-numeric value in {line.strip()!r}") from None
    return values


def as_matrix(values: np.ndarray, path, key: str, shapes=((3, 4), (4, 4))) -> np.ndarray:
    """A flat calibration entry as a matrix of one of ``shapes`` (3x4 is padded to 4x4)."""
    for rows, cols in shapes:
        if values.size == rows * cols:
            matrix = values.reshape(rows, cols)
            if not np.isfinite(matrix).all():
                raise DataError(path, f"{key} has non-finite values")
            if (rows, cols) == (3, 4) and (4, 4) in shapes:
                matrix = np.vstack([matrix, [0.0, 0.0, 0.0, 1.0]])
            return matrix
    wanted = " or ".join(f"{r * c} ({r}x{c})" for r, c in shapes)
    raise DataError(path, f"{key} has {values.size} values, expected {wanted}")
