"""Readers of point, label, image and calibration files, each validating what it reads.

Every problem raises :class:`DataError` naming the file; nothing here unpickles.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from zeroseg3d.errors import DataError

POINT_SUFFIXES = (".bin", ".npy", ".ply", ".pcd", ".las", ".laz")
GEOREFERENCED_M = 10_000.0   # coordinates farther from the origin are shifted (float32 keeps mm there)
# field names of intensity, matched without case, the first present taken: PCL's, KITTI's,
# CloudCompare's exports, Ouster's and Livox's (reflectivity)
_INTENSITY_NAMES = ("intensity", "remission", "reflectance", "reflectivity", "scalar_intensity", "i")
_LABEL_NAMES = ("label", "class", "semantic", "scalar_label")


MAX_EXTENT_M = 10_000.0   # a LiDAR scan spans at most a few hundred metres


def check_points(points: np.ndarray, path: str | Path) -> np.ndarray:
    """(N, 4) float32 with finite values and N > 0, or DataError."""
    if points.ndim != 2 or points.shape[1] != 4:
        raise DataError(path, f"expected points of shape (N, 4), got {points.shape}")
    if points.shape[0] == 0:
        raise DataError(path, "empty scan: no points")
    if not np.isfinite(points).all():   # one pass over the whole array; the details only when needed
        bad = ~np.isfinite(points[:, :3]).all(axis=1)
        if bad.any():
            raise DataError(
                path, f"{int(bad.sum())} of {len(points)} points have NaN or inf coordinates "
                f"(first at row {int(np.flatnonzero(bad)[0])})"
            )
        bad = ~np.isfinite(points[:, 3])
        raise DataError(path, f"{int(bad.sum())} of {len(points)} points have a NaN or inf intensity "
                              f"(first at row {int(np.flatnonzero(bad)[0])})")
    # per column: a reduction along the long axis of (N, 4) is several times slower
    columns = np.ascontiguousarray(points[:, :3].T)
    extent = columns.max(axis=1).astype(np.float64) - columns.min(axis=1)
    if extent.max() > MAX_EXTENT_M:
        far = np.abs(points[:, :3] - np.median(points[:, :3], axis=0)).max(axis=1) > MAX_EXTENT_M / 2
        raise DataError(path, f"the scan spans {extent.max():.3g} m ({int(far.sum())} points lie over "
                              f"{MAX_EXTENT_M / 2:g} m from its median): coordinates must be metres around one sensor")
    return np.ascontiguousarray(points, dtype=np.float32)


def local_metres(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """((N, 3) float64 coordinates, (3,) float64 origin subtracted from them): shifted by their
    median rounded to metres when they lie over GEOREFERENCED_M from the origin (georeferenced:
    UTM eastings and northings), so that the float32 points keep millimetres (at a northing of
    5,000 km float32 steps by 0.5 m); the origin is zero otherwise."""
    xyz = np.asarray(xyz, dtype=np.float64)
    origin = np.zeros(3)
    if len(xyz) and np.isfinite(xyz).all() and np.abs(xyz).max() > GEOREFERENCED_M:
        origin = np.round(np.median(xyz, axis=0))
        xyz = xyz - origin
    return xyz, origin


def _float32_points(xyz: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """(N, 4) float32 points. Values beyond float32's range become inf, which check_points
    names, rather than a numpy overflow warning."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.concatenate([xyz, np.asarray(intensity, np.float64)[:, None]], axis=1).astype(np.float32)


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


INTENSITY_SCALES = (1.0, 255.0, 65535.0)   # 0-1 (KITTI), 8-bit (nuScenes, most PLY/PCD), 16-bit (LAS)


def normalize_intensity(points: np.ndarray, path, scale: float | None = None) -> np.ndarray:
    """Intensity in 0..1 whatever the source: divided by ``scale``, or by the smallest of
    INTENSITY_SCALES its values fit under. Negative values or values over 65535 mean the
    columns are not x, y, z, intensity."""
    intensity = points[:, 3]
    low, high = float(intensity.min()), float(intensity.max())
    if scale is None:
        if low < 0 or high > INTENSITY_SCALES[-1]:
            raise DataError(path, f"intensities from {low:.4g} to {high:.4g}: not x, y, z, intensity records "
                                  "(intensity is 0-1, 0-255 or 0-65535)")
        scale = next(s for s in INTENSITY_SCALES if high <= s)
    if scale != 1.0:
        points = points.copy()
        points[:, 3] = intensity / scale
    return points


def read_kitti_bin(path: str | Path) -> np.ndarray:
    """x, y, z, intensity float32 records. A file of other records whose size happens to
    divide by 16 (a nuScenes sweep of 5 floats) is refused by its implausible intensities."""
    points = check_points(read_float_records(path, 4), path)
    try:
        return normalize_intensity(points, path)
    except DataError as error:
        raise DataError(path, f"{error.problem}; a nuScenes sweep (x y z intensity ring) is read when "
                              "its name ends in .pcd.bin") from None


def read_nuscenes_bin(path: str | Path) -> np.ndarray:
    """A nuScenes LiDAR file (*.pcd.bin): x, y, z, intensity 0-255, ring index."""
    points = check_points(read_float_records(path, 5)[:, :4].copy(), path)
    return normalize_intensity(points, path, 255.0)


def read_label_file(path: str | Path, num_points: int, dtype=np.uint32) -> np.ndarray:
    """A raw label file with one ``dtype`` value per point, checked against the point count."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "label file not found" if not path.exists() else "not a file")
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
def read_points(path: str | Path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(points (N, 4) float32, labels (N,) or None, origin (3,) float64) from .bin, .npy,
    .ply, .pcd, .las or .laz.

    Files with 3 columns get zero intensity; intensity comes normalised to 0..1
    (:func:`normalize_intensity`); georeferenced coordinates come shifted near the origin, the
    file's coordinates being points + origin (:func:`local_metres`; zero for the rest). A name
    ending in .pcd.bin is a nuScenes sweep (5 floats a point). PLY/PCD labels come from a field
    named label/class/semantic; .npy arrays of shape (N, 5) carry labels in the last column.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "point file not found")
    suffix = path.suffix.lower()
    if path.name.lower().endswith(".pcd.bin"):
        return read_nuscenes_bin(path), None, np.zeros(3)
    if suffix == ".bin":
        return read_kitti_bin(path), None, np.zeros(3)
    if suffix in (".las", ".laz"):   # whole numbers scaled: no NaN marks a missing return
        from zeroseg3d.datasets.las import read_las

        return _points_from_fields(read_las(path), path)
    if suffix == ".npy":
        array = read_npy(path)
        if array.ndim != 2 or array.shape[1] not in (3, 4, 5):
            raise DataError(path, f"expected an (N, 3), (N, 4) or (N, 5) array, got {array.shape}")
        fields = dict(zip(("x", "y", "z", "intensity", "label"), array.T))
    elif suffix == ".ply":
        fields = read_ply(path)
    elif suffix == ".pcd":
        fields = read_pcd(path)
    else:
        raise DataError(path, f"unsupported point file type {suffix!r}; use one of {POINT_SUFFIXES}")
    return _points_from_fields(_without_missing_returns(fields, path), path)


def read_npy(path: Path) -> np.ndarray:
    """A plain numeric .npy array. The header is checked against the file's size before any
    data is read (a header may claim 1e11 rows); object, string, complex and structured
    arrays and .npz archives are refused."""
    from numpy.lib import format as npy

    with open(path, "rb") as file:
        try:
            version = npy.read_magic(file)
            reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            shape, fortran, dtype = reader(file)
        except Exception as exc:  # numpy's header parser raises many kinds on hostile bytes
            file.seek(0)
            kind = "a .npz archive, not a .npy array" if file.read(2) == b"PK" else "not a .npy array"
            raise DataError(path, f"{kind} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
        if dtype.names is not None or dtype.kind not in "fiub":
            raise DataError(path, f"not a plain numeric array (dtype {dtype})")
        count = int(np.prod(shape, dtype=np.float64))
        remaining = path.stat().st_size - file.tell()
        if count * dtype.itemsize != remaining:
            raise DataError(path, f"the header declares shape {shape} ({count * dtype.itemsize} bytes of "
                                  f"{dtype}) but {remaining} bytes follow it")
        data = np.fromfile(file, dtype=dtype, count=count)
    return data.reshape(shape, order="F" if fortran else "C")


def _integer_labels(values: np.ndarray, path: Path) -> np.ndarray:
    """Class ids stored as numbers: finite whole numbers in int32's range."""
    values = values.astype(np.float64)
    bad = ~np.isfinite(values) | (values != np.round(values)) | (np.abs(values) > 2**31 - 1)
    if bad.any():
        raise DataError(path, f"{int(bad.sum())} labels are not whole numbers (first at row "
                              f"{int(np.flatnonzero(bad)[0])}: {values[bad][0]!r})")
    return values.astype(np.int64)


def _without_missing_returns(fields: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """``fields`` without the points whose x, y and z are all NaN: the mark of a beam without a
    return, which organized clouds (a Velodyne's or Ouster's, WIDTH x HEIGHT, as PCL, ROS and
    their exports to PLY or arrays keep them) hold in place. Said in a warning; any other NaN
    or inf stays an error (check_points)."""
    import warnings

    lower = {k.lower(): k for k in fields}
    if not all(axis in lower for axis in "xyz"):
        return fields   # _points_from_fields names what is missing
    missing = np.isnan(fields[lower["x"]]) & np.isnan(fields[lower["y"]]) & np.isnan(fields[lower["z"]])
    if not missing.any():
        return fields
    if missing.all():
        raise DataError(path, f"all {len(missing)} points are NaN (beams without a return): no scan")
    warnings.warn(f"{path}: read without {int(missing.sum())} of {len(missing)} points whose x, y and z are NaN "
                  f"(beams without a return)", stacklevel=4)
    return {name: values[~missing] for name, values in fields.items()}


def _points_from_fields(fields: dict[str, np.ndarray], path: Path):
    lower = {k.lower(): v for k, v in fields.items()}
    missing = [axis for axis in "xyz" if axis not in lower]
    if missing:
        raise DataError(path, f"missing coordinate fields {missing}; found {sorted(fields)}")
    intensity = next((lower[n] for n in _INTENSITY_NAMES if n in lower), None)
    if intensity is None:
        intensity = np.zeros(len(lower["x"]))
    xyz, origin = local_metres(np.stack([lower["x"], lower["y"], lower["z"]], axis=1))
    points = _float32_points(xyz, intensity)
    label = next((lower[n] for n in _LABEL_NAMES if n in lower), None)
    points = normalize_intensity(check_points(points, path), path)
    return points, None if label is None else _integer_labels(label, path), origin


_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}


def _count(token: str | None, path: Path, what: str) -> int:
    """A count from a file header: a non-negative whole number."""
    if token is None or not token.isdigit():
        raise DataError(path, f"{what} must be a non-negative whole number, not {token!r}")
    return int(token)


def _ascii_header(data: bytes, path: Path, kind: str) -> str:
    try:
        return data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise DataError(path, f"{kind} header is not ASCII (byte {exc.start})") from None


def read_ply(path: str | Path) -> dict[str, np.ndarray]:
    """The vertex element of an ascii or binary PLY file as {property: (N,) array}.

    Written here rather than taken from plyfile, the usual reader: plyfile is GPL-3.0 and
    zeroseg3d is Apache-2.0. It reads what LiDAR tools write (one vertex element of scalar
    properties, first) and refuses everything else by name."""
    path = Path(path)
    data = path.read_bytes()
    end = data.find(b"end_header")
    newline = data.find(b"\n", end)
    if not data.startswith(b"ply") or end < 0 or newline < 0:
        raise DataError(path, "not a PLY file (no 'ply' magic or no 'end_header' line)")
    header = _ascii_header(data[:end], path, "PLY").splitlines()
    body = data[newline + 1:]
    fmt, count, props, elements = None, 0, [], []
    for line in header[1:]:
        tokens = line.split()
        if not tokens or tokens[0] in ("comment", "obj_info"):
            continue
        if tokens[0] == "format":
            if len(tokens) < 2:
                raise DataError(path, "the format line names no format")
            fmt = tokens[1]
        elif tokens[0] == "element":
            if len(tokens) != 3:
                raise DataError(path, f"expected 'element NAME COUNT', got {line.strip()!r}")
            elements.append(tokens[1])
            if tokens[1] == "vertex":
                if len(elements) > 1:
                    raise DataError(path, "the vertex element must come first")
                count = _count(tokens[2], path, "the vertex count")
            elif len(elements) == 1 and elements[0] != "vertex":
                raise DataError(path, "the vertex element must come first")
        elif tokens[0] == "property":
            if not elements:
                raise DataError(path, "a property before any element")
            if elements[-1] != "vertex":
                continue
            if len(tokens) >= 2 and tokens[1] == "list":
                raise DataError(path, "list properties in the vertex element are not supported")
            if len(tokens) != 3:
                raise DataError(path, f"expected 'property TYPE NAME', got {line.strip()!r}")
            if tokens[1] not in _PLY_TYPES:
                raise DataError(path, f"unknown PLY property type {tokens[1]!r}")
            if tokens[2] in (name for name, _ in props):
                raise DataError(path, f"vertex property {tokens[2]!r} declared twice")
            props.append((tokens[2], _PLY_TYPES[tokens[1]]))
        else:
            raise DataError(path, f"unknown PLY header line {line.strip()[:40]!r}")
    if "vertex" not in elements:
        raise DataError(path, "no vertex element in PLY header")
    if not props:
        raise DataError(path, "the vertex element has no properties")
    if fmt == "ascii":
        try:
            rows = [r.split() for r in body.decode("ascii").splitlines() if r.strip()]
        except UnicodeDecodeError as exc:
            raise DataError(path, f"ascii PLY data is not ASCII (byte {exc.start} after the header)") from None
        if len(rows) < count:
            raise DataError(path, f"truncated: expected {count} vertices, found {len(rows)} rows")
        if len(elements) == 1 and len(rows) > count:
            raise DataError(path, f"{len(rows)} data rows but the header declares {count} vertices")
        try:
            table = np.array(rows[:count], dtype=np.float64).reshape(count, -1)
        except ValueError:
            raise DataError(path, "malformed ascii PLY vertex data (non-numbers, or rows of different "
                                  "lengths)") from None
        if table.shape[1] != len(props):
            raise DataError(path, f"vertex rows hold {table.shape[1]} values, the header declares {len(props)}")
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
    if len(elements) == 1 and len(body) > count * dtype.itemsize:
        raise DataError(path, f"{len(body) - count * dtype.itemsize} bytes after the {count} declared vertices")
    table = np.frombuffer(body, dtype=dtype, count=count)
    return {name: table[name].astype(np.float64) for name, _ in props}


def write_ply(path: str | Path, points: np.ndarray, colors: np.ndarray | None = None,
              labels: np.ndarray | None = None, origin: np.ndarray | None = None,
              confidence: np.ndarray | None = None) -> None:
    """Binary little-endian PLY with x, y, z, intensity and optional RGB, label and confidence. Atomic.
    With a non-zero ``origin`` (a georeferenced scan's, :func:`read_points`) x, y and z are
    points + origin in double precision: the file's own coordinates."""
    from zeroseg3d.utils.atomic import atomic_write_bytes

    shifted = origin is not None and bool(np.any(origin))
    coordinate = "<f8" if shifted else "<f4"
    fields = [("x", coordinate), ("y", coordinate), ("z", coordinate), ("intensity", "<f4")]
    if colors is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    if labels is not None:
        fields += [("label", "<i4")]
    if confidence is not None:
        fields += [("confidence", "<f4")]
    table = np.empty(len(points), dtype=np.dtype(fields))
    for i, axis in enumerate(("x", "y", "z", "intensity")):
        table[axis] = points[:, i] if points.shape[1] > i else 0.0
        if shifted and i < 3:
            table[axis] += origin[i]
    if colors is not None:
        table["red"], table["green"], table["blue"] = colors[:, 0], colors[:, 1], colors[:, 2]
    if labels is not None:
        table["label"] = labels
    if confidence is not None:
        table["confidence"] = confidence
    ply_types = {"<f4": "float", "<f8": "double", "u1": "uchar", "<i4": "int"}
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(points)}"]
    header += [f"property {ply_types[code]} {name}" for name, code in fields]
    header.append("end_header")
    atomic_write_bytes(path, ("\n".join(header) + "\n").encode() + table.tobytes())


_PCD_TYPES = {("F", 4): "f4", ("F", 8): "f8", ("I", 1): "i1", ("I", 2): "i2", ("I", 4): "i4",
              ("I", 8): "i8", ("U", 1): "u1", ("U", 2): "u2", ("U", 4): "u4", ("U", 8): "u8"}


def read_pcd(path: str | Path) -> dict[str, np.ndarray]:
    """The single-valued fields of an ascii, binary or binary_compressed PCD file (v0.7) as
    {field: (N,) array}; PCL's padding fields (named ``_``) and fields of COUNT > 1 are read
    past. (Written here: the PCD readers on PyPI come with Open3D or PCL bindings, hundreds of
    MB for one header, or need a C compiler for LZF.)"""
    path = Path(path)
    data = path.read_bytes()
    header: dict[str, list[str]] = {}
    offset = 0
    while True:
        newline = data.find(b"\n", offset)
        if newline < 0:
            raise DataError(path, "not a PCD file (header has no DATA line)")
        line = _ascii_header(data[offset:newline], path, "PCD").strip()
        offset = newline + 1
        if not line or line.startswith("#"):
            continue
        key, *values = line.split()
        header[key.upper()] = values
        if key.upper() == "DATA":
            break
    for key in ("FIELDS", "SIZE", "TYPE", "POINTS", "DATA"):
        if not header.get(key):
            raise DataError(path, f"PCD header lacks {key}")
    names, sizes, types = header["FIELDS"], header["SIZE"], header["TYPE"]
    counts = header.get("COUNT", ["1"] * len(names))
    if not len(names) == len(sizes) == len(types) == len(counts):
        raise DataError(path, f"PCD header lists {len(names)} FIELDS, {len(sizes)} SIZE, {len(types)} TYPE and "
                              f"{len(counts)} COUNT entries: they must match")
    named = [n for n in names if n != "_"]   # PCL writes its padding bytes as fields named _
    if len(set(named)) != len(named):
        raise DataError(path, f"PCD FIELDS repeat a name: {names}")
    count = _count(header["POINTS"][0], path, "PCD POINTS")
    counts = [_count(c, path, "PCD COUNT") for c in counts]
    if 0 in counts:
        raise DataError(path, f"PCD COUNT must be at least 1, got {counts}")
    try:
        codes = [_PCD_TYPES[(t.upper(), _count(s, path, "PCD SIZE"))] for t, s in zip(types, sizes)]
    except KeyError:
        raise DataError(path, f"unsupported PCD field types {list(zip(types, sizes))}") from None
    # each field's columns; the fields returned: named and single-valued
    columns = np.cumsum([0] + counts)
    kept = [(i, n) for i, n in enumerate(names) if n != "_" and counts[i] == 1]
    mode = header["DATA"][0].lower()
    body = data[offset:]
    if mode == "ascii":
        try:
            rows = [r.split() for r in body.decode("ascii").splitlines() if r.strip()]
        except UnicodeDecodeError as exc:
            raise DataError(path, f"ascii PCD data is not ASCII (byte {exc.start} after the header)") from None
        if len(rows) != count:
            raise DataError(path, f"{len(rows)} data rows but POINTS declares {count}")
        try:
            table = np.array(rows, dtype=np.float64).reshape(count, -1)
        except ValueError:
            raise DataError(path, "malformed ascii PCD data (non-numbers, or rows of different lengths)") from None
        if table.shape[1] != columns[-1]:
            raise DataError(path, f"data rows hold {table.shape[1]} values, FIELDS and COUNT declare {columns[-1]}")
        return {name: table[:, columns[i]] for i, name in kept}
    field_bytes = [np.dtype(code).itemsize * k for code, k in zip(codes, counts)]
    need = count * sum(field_bytes)
    if mode == "binary_compressed":
        body = _pcd_decompress(body, need, path)
        # PCL stores the compressed points field by field: every point's x, then every y, ...
        starts = np.cumsum([0] + [count * b for b in field_bytes])
        return {name: np.frombuffer(body, "<" + codes[i], count=count, offset=int(starts[i])).astype(np.float64)
                for i, name in kept}
    if mode != "binary":
        raise DataError(path, f"PCD DATA {mode!r} is not supported (use ascii, binary or binary_compressed)")
    if len(body) != need:
        raise DataError(path, f"{count} points need {need} bytes of data, found {len(body)}")
    dtype = np.dtype({"names": [f"f{i}" for i in range(len(names))],
                      "formats": [("<" + c, (k,)) if k > 1 else "<" + c for c, k in zip(codes, counts)]})
    table = np.frombuffer(body, dtype=dtype, count=count)
    return {name: table[f"f{i}"].astype(np.float64) for i, name in kept}


def _pcd_decompress(body: bytes, size: int, path: Path) -> bytes:
    """The ``size`` bytes of a binary_compressed PCD body: two little-endian uint32 (compressed
    and uncompressed size), then LZF data."""
    if len(body) < 8:
        raise DataError(path, f"truncated: binary_compressed PCD data of {len(body)} bytes has no size fields")
    compressed, uncompressed = np.frombuffer(body[:8], "<u4").tolist()
    if uncompressed != size:
        raise DataError(path, f"the compressed data unpacks to {uncompressed} bytes; the header's fields and "
                              f"POINTS need {size}")
    if compressed > len(body) - 8:
        raise DataError(path, f"truncated: {compressed} bytes of compressed data declared, {len(body) - 8} present")
    return lzf_decompress(body[8:8 + compressed], size, path)


def lzf_decompress(data: bytes, size: int, path: Path) -> bytes:
    """LZF (liblzf's format, as PCL writes it) decompressed to exactly ``size`` bytes. A token
    is a literal run (control byte < 32: that many bytes + 1 follow) or a copy of 3-264 bytes
    from up to 8 KiB back."""
    if size > 88 * len(data) + 32:   # one 3-byte token yields at most 264 bytes
        raise DataError(path, f"{len(data)} bytes of LZF data cannot unpack to {size}")
    out = bytearray()
    at, end = 0, len(data)
    while at < end:
        control = data[at]
        at += 1
        if control < 32:
            run = control + 1
            if at + run > end:
                raise DataError(path, "damaged LZF data: a literal run past the end of the compressed data")
            out += data[at:at + run]
            at += run
        else:
            length = control >> 5
            if at + (length == 7) >= end:   # a long copy's length byte, then the distance byte
                raise DataError(path, "damaged LZF data: cut inside a copy token")
            if length == 7:
                length += data[at]
                at += 1
            back = ((control & 31) << 8) + data[at] + 1
            at += 1
            length += 2
            start = len(out) - back
            if start < 0:
                raise DataError(path, f"damaged LZF data: a copy from {back} bytes back at output byte {len(out)}")
            if back >= length:
                out += out[start:start + length]
            else:   # overlapping: the copy repeats the last ``back`` bytes
                out += (out[start:] * (length // back + 1))[:length]
        if len(out) > size:
            break
    if len(out) != size:
        raise DataError(path, f"LZF data unpacks to {len(out)} bytes, {size} expected")
    return bytes(out)


# -- images -----------------------------------------------------------------------------
MAX_IMAGE_SIDE = 16384   # pixels: larger than any camera of a driving dataset


def _open_image(path: Path, decode: bool):
    """(size, RGB array or None); the size is checked from the header before any decoding
    (Pillow's own guard is a global that other packages switch off: nuscenes-devkit does)."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise DataError(path, "missing image")
    try:
        with Image.open(path) as image:
            width, height = image.size
            if not (0 < width <= MAX_IMAGE_SIDE and 0 < height <= MAX_IMAGE_SIDE):
                raise DataError(path, f"the header claims {width}x{height} pixels (at most "
                                      f"{MAX_IMAGE_SIDE} a side)")
            return (width, height), np.asarray(image.convert("RGB")) if decode else None
    except DataError:
        raise
    except Image.DecompressionBombError as exc:
        raise DataError(path, f"the header claims an image too large to open ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(path, f"unreadable or truncated image ({first})") from None


def read_image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the image header, without decoding the pixels."""
    return _open_image(Path(path), decode=False)[0]


def read_image(path: str | Path, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB; DataError when missing, unreadable or not ``expected_size``."""
    path = Path(path)
    array = _open_image(path, decode=True)[1]
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
    from zeroseg3d.utils.yaml_text import read_text_utf8

    values: dict[str, np.ndarray] = {}
    for number, line in enumerate(read_text_utf8(path, lambda problem: DataError(path, problem)).splitlines(),
                                  start=1):
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


def check_rigid(matrix: np.ndarray, path, key: str) -> np.ndarray:
    """A 4x4 rigid transform: a rotation (orthonormal to 1e-2, determinant +1) and a finite
    translation. A singular, scaled or garbled matrix would project every point wrongly."""
    rotation = matrix[:3, :3]
    if (not np.isfinite(matrix).all() or np.abs(rotation @ rotation.T - np.eye(3)).max() > 1e-2
            or np.linalg.det(rotation) < 0 or not np.allclose(matrix[3], [0, 0, 0, 1])):
        raise DataError(path, f"{key} is not a rigid transform (its 3x3 part must be a rotation)")
    return matrix


def check_intrinsics(K: np.ndarray, path, key: str) -> np.ndarray:
    """A pinhole camera matrix [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0."""
    if (K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0
            or not np.allclose(K[2], [0, 0, 1]) or K[1, 0] != 0):
        raise DataError(path, f"{key} is not a camera matrix [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with "
                              "fx, fy > 0")
    return K


def check_image_size_value(value, path, what: str) -> tuple[int, int]:
    """[width, height]: two whole numbers between 1 and MAX_IMAGE_SIDE."""
    try:
        width, height = value
        size = (int(width), int(height))
    except (TypeError, ValueError):
        raise DataError(path, f"{what} must be [width, height], not {value!r}") from None
    if (size != (width, height) or isinstance(width, bool) or isinstance(height, bool)
            or not all(1 <= v <= MAX_IMAGE_SIDE for v in size)):
        raise DataError(path, f"{what} must be two whole numbers of pixels between 1 and {MAX_IMAGE_SIDE}, "
                              f"not {value!r}")
    return size
