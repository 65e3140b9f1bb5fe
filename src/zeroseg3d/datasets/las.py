"""LAS and LAZ point files (laspy; LAZ through lazrs), their structure checked before laspy
reads them.

laspy and lazrs trust a file's header, VLRs and chunk table: on damaged ones they looped over
billions of claimed VLRs, asked for terabytes, panicked or aborted the whole process on a
failed allocation (found by mutating valid files). Each field they trust is checked against
the file's size first, and every problem raises :class:`DataError` naming the file.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from zeroseg3d.errors import DataError

# LAS 1.0-1.5 public header: the smallest size per minor version, and each point format's record size
_LAS_HEADER_SIZE = {0: 227, 1: 227, 2: 227, 3: 235, 4: 375, 5: 393}
_LAS_RECORD_SIZE = (20, 28, 26, 34, 57, 63, 30, 36, 38, 59, 67)
_VLR_HEADER, _EVLR_HEADER = 54, 60
# LASzip stores 1M identical points in 7-12 kB (83-141 points per byte); a header claiming
# more than this many points per compressed byte is damaged, not a better compressor
_LAZ_MAX_POINTS_PER_BYTE = 1000
# lazrs allocates a whole chunk (points x record size) before decompressing it
_LAZ_MAX_CHUNK_POINTS = 1 << 24
_LAZ_VARIABLE_CHUNKS = 0xFFFFFFFF


def check_las_file(path: Path) -> None:
    """Check a LAS/LAZ public header against the file's size before laspy reads it: laspy
    loops over the claimed VLR count and allocates the claimed point count, so one damaged
    field made it run for minutes or ask for terabytes."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        head = file.read(max(_LAS_HEADER_SIZE.values()))
    if head[:4] != b"LASF":
        raise DataError(path, "not a LAS/LAZ file (no 'LASF' signature)")
    if len(head) < 227:
        raise DataError(path, f"truncated: {len(head)} bytes, shorter than a LAS header")
    major, minor = head[24], head[25]
    if major != 1 or minor not in _LAS_HEADER_SIZE:
        raise DataError(path, f"unsupported LAS version {major}.{minor} (1.0-1.5 are read)")
    header_size, data_offset, vlr_count, format_byte, record_size, count = struct.unpack_from("<HIIBHI", head, 94)
    if not _LAS_HEADER_SIZE[minor] <= header_size <= data_offset <= size:
        raise DataError(path, f"damaged header: header size {header_size} and point data offset {data_offset} "
                              f"do not fit LAS {major}.{minor} in a file of {size} bytes")
    if vlr_count * _VLR_HEADER > data_offset - header_size:
        raise DataError(path, f"damaged header: {vlr_count} VLRs claimed in {data_offset - header_size} bytes")
    compressed, point_format = format_byte >> 6 == 0b10, format_byte & 0x3F
    if point_format >= len(_LAS_RECORD_SIZE) or record_size < _LAS_RECORD_SIZE[point_format]:
        raise DataError(path, f"damaged header: point format {point_format} with {record_size}-byte records")
    if minor >= 4:
        evlr_start, evlr_count, count = struct.unpack_from("<QIQ", head, 235)
        if evlr_count and not (data_offset <= evlr_start and evlr_count * _EVLR_HEADER <= size - evlr_start):
            raise DataError(path, f"damaged header: {evlr_count} extended VLRs claimed from byte {evlr_start} "
                                  f"of a {size}-byte file")
    stored = size - data_offset
    if compressed and count > _LAZ_MAX_POINTS_PER_BYTE * stored:
        raise DataError(path, f"damaged header: {count} points claimed in {stored} bytes of compressed data")
    if compressed and count:
        _check_laz_chunk_table(path, size, header_size, vlr_count, data_offset, count, record_size)
    if not compressed and count * record_size > stored:
        raise DataError(path, f"damaged header: {count} points of {record_size} bytes claimed, "
                              f"{stored} bytes of point data present")


def _check_laz_chunk_table(path: Path, size: int, header_size: int, vlr_count: int, data_offset: int, count: int,
                           record_size: int) -> None:
    """LASzip's chunk table (where each chunk of compressed points starts) against the file:
    lazrs trusts it, and a damaged one made it abort the process on a 26 GB allocation or
    panic (a Rust backtrace on stderr)."""
    import lazrs

    with open(path, "rb") as file:
        file.seek(header_size)
        laszip = None
        for _ in range(vlr_count):
            head = _read_exact(file, _VLR_HEADER, path)
            user, record, length = head[2:18].split(b"\0")[0], *struct.unpack_from("<HH", head, 18)
            data = _read_exact(file, length, path)
            if user == b"laszip encoded" and record == 22204:
                laszip = data
        if laszip is None:
            raise DataError(path, "compressed points without LASzip's VLR")
        chunk_size = _check_laszip_vlr(path, laszip, record_size)
        file.seek(data_offset)
        (table_at,) = struct.unpack("<q", _read_exact(file, 8, path))
        if table_at == -1:
            return  # written as a stream: lazrs finds the chunks without a table
        if not data_offset + 8 <= table_at <= size - 8:
            raise DataError(path, f"damaged LAZ: chunk table at byte {table_at} of a {size}-byte file")
        file.seek(table_at)
        version, chunks = struct.unpack("<II", _read_exact(file, 8, path))
        expected = -(-count // chunk_size) if chunk_size != _LAZ_VARIABLE_CHUNKS else None
        if version != 0 or not 1 <= chunks <= min(count, table_at - data_offset) or expected not in (None, chunks):
            raise DataError(path, f"damaged LAZ: chunk table version {version} with {chunks} chunks "
                                  f"for {count} points")
        file.seek(data_offset)
        try:
            table = lazrs.read_chunk_table(file, lazrs.LazVlr(laszip))
        except Exception as exc:  # lazrs's errors on a damaged VLR or table
            raise DataError(path, f"damaged LAZ: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if sum(chunk_bytes for _, chunk_bytes in table) > table_at - data_offset:
        raise DataError(path, f"damaged LAZ: its chunk table places {len(table)} chunks beyond the compressed data")
    if chunk_size == _LAZ_VARIABLE_CHUNKS and any(not 0 < points <= count for points, _ in table):
        raise DataError(path, f"damaged LAZ: its chunk table gives chunks of more than the file's {count} points")


def _check_laszip_vlr(path: Path, data: bytes, record_size: int) -> int:
    """LASzip's VLR's chunk size (points, or _LAZ_VARIABLE_CHUNKS), the VLR checked with its
    item sizes (a damaged chunk size made lazrs abort the process on a 69 GB allocation)."""
    if len(data) < 34:
        raise DataError(path, f"damaged LAZ: LASzip's VLR holds {len(data)} bytes")
    (chunk_size,) = struct.unpack_from("<I", data, 12)
    (items,) = struct.unpack_from("<H", data, 32)
    if len(data) != 34 + 6 * items:
        raise DataError(path, f"damaged LAZ: LASzip's VLR lists {items} items in {len(data)} bytes")
    sizes = [struct.unpack_from("<H", data, 34 + 6 * i + 2)[0] for i in range(items)]
    if sum(sizes) != record_size:
        raise DataError(path, f"damaged LAZ: LASzip's items add up to {sum(sizes)} bytes a point, the header "
                              f"says {record_size}")
    if not (0 < chunk_size <= _LAZ_MAX_CHUNK_POINTS or chunk_size == _LAZ_VARIABLE_CHUNKS):
        raise DataError(path, f"damaged LAZ: chunks of {chunk_size} points (at most {_LAZ_MAX_CHUNK_POINTS})")
    return chunk_size


def _read_exact(file, count: int, path: Path) -> bytes:
    data = file.read(count)
    if len(data) < count:
        raise DataError(path, f"truncated: ends {count - len(data)} bytes into a record at byte {file.tell()}")
    return data


def read_las(path: Path) -> dict[str, np.ndarray]:
    """x, y, z (float64, as the file's scales and offsets give them) and intensity of a LAS
    or LAZ file (:func:`open_las`). ASPRS classification codes are not read as labels: they
    are another taxonomy."""
    las = open_las(path)
    fields = {axis: np.asarray(getattr(las, axis), dtype=np.float64) for axis in "xyz"}
    fields["intensity"] = np.asarray(las.intensity, dtype=np.float64)
    return fields


def open_las(path: Path):
    """A LAS or LAZ file as laspy's LasData (LAZ through lazrs), its structure checked first
    (:func:`check_las_file`); DataError naming the file for whatever laspy and lazrs refuse."""
    import laspy

    check_las_file(path)
    try:
        return laspy.read(path)
    except BaseException as exc:  # laspy's and numpy's errors, and lazrs's Rust panics (pyo3's PanicException)
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if type(exc).__name__ == "LazrsError":   # the header and chunk table passed: the points are damaged
            raise DataError(path, f"damaged LAZ: the compressed points do not decode (lazrs: {first})") from None
        raise DataError(path, f"unreadable LAS/LAZ file ({first})") from None


LAS_MAX_CLASSES = 256   # a point format 6-10 classification is one byte
# LAS 1.4's point format holding what each older one holds, with a one-byte classification
_LAS_14_FORMAT = {0: 6, 1: 6, 2: 7, 3: 7, 4: 9, 5: 10}
_CLASSES_VLR = ("zeroseg3d", 1)   # user id and record id of the VLR holding the class names as JSON


def write_las(path: Path, points: np.ndarray, labels: np.ndarray, class_names: list[str], colors: np.ndarray,
              confidence: np.ndarray | None = None, origin: np.ndarray | None = None,
              source: Path | None = None) -> None:
    """A segmented scan as LAS 1.4 (LAZ when ``path`` ends in .laz). The class index is the
    classification, named in the standard Classification Lookup VLR (15 ASCII characters a
    name) and in full in a zeroseg3d VLR (JSON); ``confidence`` is a float32 extra dimension
    (``zeroseg3d_confidence`` where the source has a ``confidence`` of another type).

    From a LAS/LAZ ``source`` (the scan's own file), a copy of it: every attribute, VLR and
    coordinate as they were, formats 0-5 converted to their LAS 1.4 counterparts (6-10: one
    byte of classification). From any other scan, point format 7: x, y, z in the file's own
    coordinates (points + ``origin``) to the millimetre, intensity (0..1) scaled to
    0..65535, RGB the class colours (8 bits scaled to 16). Atomic."""
    import io

    import laspy

    from zeroseg3d.utils.atomic import atomic_write_bytes

    if len(class_names) > LAS_MAX_CLASSES:
        raise ValueError(f"LAS classifications hold {LAS_MAX_CLASSES} classes, not {len(class_names)}")
    if source is not None and source.suffix.lower() in (".las", ".laz"):
        las = open_las(source)
        if len(las.points) != len(labels):
            raise ValueError(f"{source} holds {len(las.points)} points, the prediction {len(labels)}")
        if las.header.point_format.id < 6:
            las = laspy.convert(las, point_format_id=_LAS_14_FORMAT[las.header.point_format.id], file_version="1.4")
    else:
        las = _new_las(points, labels, colors, origin)
    _name_classes(las, class_names)
    las.classification = labels.astype(np.uint8)
    if confidence is not None:
        name = "confidence"
        if name in las.point_format.dimension_names and las[name].dtype != np.float32:
            name = "zeroseg3d_confidence"   # the user's file has a confidence of its own
        if name not in las.point_format.dimension_names:
            las.add_extra_dim(laspy.ExtraBytesParams(name=name, type=np.float32, description="softmax probability"))
        las[name] = confidence.astype(np.float32)
    buffer = io.BytesIO()
    las.write(buffer, do_compress=path.suffix.lower() == ".laz")
    atomic_write_bytes(path, buffer.getvalue())


def _new_las(points: np.ndarray, labels: np.ndarray, colors: np.ndarray, origin: np.ndarray | None):
    import laspy

    header = laspy.LasHeader(point_format=7, version="1.4")
    origin = np.zeros(3) if origin is None else np.asarray(origin, np.float64)
    xyz = points[:, :3].astype(np.float64) + origin
    header.offsets = np.floor(xyz.min(axis=0)) if len(xyz) else origin
    header.scales = [0.001] * 3
    las = laspy.LasData(header)
    las.x, las.y, las.z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    las.intensity = np.rint(np.clip(points[:, 3], 0, 1) * 65535).astype(np.uint16)
    rgb = colors[labels].astype(np.uint16) * 257
    las.red, las.green, las.blue = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    return las


def _name_classes(las, class_names: list[str]) -> None:
    """The class names in ``las``'s VLRs, in place of any lookup or zeroseg3d VLR it held."""
    import json

    import laspy

    lookup = laspy.vlrs.known.ClassificationLookupVlr()
    for index, name in enumerate(class_names):
        ascii_name = name.encode("ascii", "replace").decode()
        # laspy reads back letters, digits and spaces only
        lookup[index] = "".join(c if c.isalnum() else " " for c in ascii_name)[:15]
    vlrs = las.header.vlrs
    vlrs[:] = [v for v in vlrs if not isinstance(v, type(lookup)) and (v.user_id, v.record_id) != _CLASSES_VLR]
    vlrs.append(lookup)
    vlrs.append(laspy.VLR(*_CLASSES_VLR, description="class names (JSON)",
                          record_data=json.dumps({"classes": list(class_names)}).encode()))
