"""A corpus of hostile inputs, written by the test (no committed binaries), one per known way
a user's file goes wrong, across every input path: each gets the project's own error, one
line naming the file and saying what is wrong (the expected words below)."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from zeroseg3d.errors import ZeroSeg3DError

GOOD = np.array([[1, 2, 0.5, 0.1], [3, -1, 0.2, 0.9], [-2, 4, 1.5, 0.4], [0.5, 0.5, -1, 0.0]], np.float32)
CALIB = ("P2: 700 0 600 45 0 700 180 0 0 0 1 0.003\n"
         "Tr: 0 -1 0 0 0 0 -1 -0.08 1 0 0 -0.27\n")
POSE = "1 0 0 0 0 1 0 0 0 0 1 0\n"


def npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npy_header(shape, descr="<f4") -> bytes:
    """A .npy whose header claims ``shape``, followed by 64 bytes."""
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(64)


def png(size=(8, 6), claimed=None) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((size[1], size[0], 3), np.uint8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    if claimed:
        data[16:24] = struct.pack(">II", *claimed)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def ply(header_lines, body=b"", fmt="ascii") -> bytes:
    return ("\n".join(["ply", f"format {fmt} 1.0", *header_lines, "end_header"]) + "\n").encode() + body


XYZI = ["element vertex 2", "property float x", "property float y", "property float z", "property float intensity"]
ROWS = b"1 2 3 0.5\n4 5 6 0.1\n"


def pcd(fields="x y z intensity", size="4 4 4 4", type_="F F F F", count=None, points="2", data="ascii",
        body=b"1 2 3 0.5\n4 5 6 0.1\n", drop=()) -> bytes:
    lines = {"VERSION": "0.7", "FIELDS": fields, "SIZE": size, "TYPE": type_, "COUNT": count, "WIDTH": points,
             "HEIGHT": "1", "POINTS": points, "DATA": data}
    text = "".join(f"{k} {v}\n" for k, v in lines.items() if v is not None and k not in drop)
    return text.encode() + body


def yaml_bomb() -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 12)]
    return "\n".join(lines) + "\n"


def las(compressed=False, version="1.2", point_format=3) -> bytes:
    import laspy

    data = laspy.LasData(laspy.LasHeader(point_format=point_format, version=version))
    data.x, data.y, data.z = (GOOD[:, i].astype(np.float64) for i in range(3))
    buffer = io.BytesIO()
    data.write(buffer, do_compress=compressed)
    return buffer.getvalue()


def las_edit(data: bytes, *edits) -> bytes:
    """``data`` with (byte offset, struct format, value) edits; an offset may be a function
    of the file's bytes (the point data's start, LASzip's chunk table)."""
    data = bytearray(data)
    for at, fmt, value in edits:
        at = at(bytes(data)) if callable(at) else at
        struct.pack_into(fmt, data, at, value)
    return bytes(data)


def las_points_at(data: bytes) -> int:
    return struct.unpack_from("<I", data, 96)[0]


def laz_table_at(data: bytes) -> int:
    return struct.unpack_from("<q", data, las_points_at(data))[0]


# LASzip's VLR, the only VLR laspy writes here: its 54-byte header right after the 227-byte
# LAS 1.2 header; its chunk size 12 bytes into its data, its item list 34 bytes in
LASZIP_DATA = 227 + 54


# -- point files: (file name, bytes, expected words) -----------------------------------
POINT_FILES = [
    ("empty.bin", b"", "empty scan"),
    ("odd.bin", bytes(17), "not a multiple of 16"),
    ("nan.bin", np.array([[np.nan, 0, 0, 0.5]], np.float32).tobytes(), "NaN or inf coordinates"),
    ("inf_intensity.bin", np.array([[1, 0, 0, np.inf]], np.float32).tobytes(), "NaN or inf intensity"),
    ("far.bin", np.array([[0, 0, 0, 0.1], [1e30, 0, 0, 0.1]], np.float32).tobytes(), "the scan spans"),
    ("nuscenes_sweep.bin", np.tile(np.array([[-5, 3, -1.5, 40, 7]], np.float32), (8, 1)).tobytes(), "pcd.bin"),
    ("negative_intensity.bin", np.array([[1, 2, 3, -0.5]], np.float32).tobytes(), "intensities from -0.5"),
    ("huge_intensity.bin", np.array([[1, 2, 3, 1e6]], np.float32).tobytes(), "not x, y, z, intensity"),
    ("short.pcd.bin", bytes(24), "not a multiple of 20"),
    ("empty.npy", b"", "not a .npy array"),
    ("archive.npy", b"PK\x03\x04" + bytes(60), "npz archive"),
    ("strings.npy", npy(np.array([["a", "b", "c", "d"]])), "not a plain numeric array"),
    ("objects.npy", npy_header((1, 4), "|O"), "not a plain numeric array"),
    ("complex.npy", npy(np.ones((2, 4), np.complex64)), "not a plain numeric array"),
    ("structured.npy", npy(np.zeros(2, [("x", "f4"), ("y", "f4")])), "not a plain numeric array"),
    ("claims_1e11_rows.npy", npy_header((100_000_000_000, 4)), "declares shape"),
    ("one_dimensional.npy", npy(np.zeros(8, np.float32)), r"expected an \(N, 3\)"),
    ("six_columns.npy", npy(np.zeros((3, 6), np.float32)), r"expected an \(N, 3\)"),
    ("fractional_labels.npy", npy(np.array([[1, 2, 3, 0.5, 2.5]], np.float32)), "not whole numbers"),
    ("nan_labels.npy", npy(np.array([[1, 2, 3, 0.5, np.nan]], np.float32)), "not whole numbers"),
    ("huge_labels.npy", npy(np.array([[1, 2, 3, 0.5, 1e12]], np.float64)), "not whole numbers"),
    ("nan_points.npy", npy(np.array([[np.nan, 2, 3, 0.5]], np.float32)), "NaN or inf coordinates"),
    ("no_magic.ply", b"PLY?\nend_header\n", "not a PLY file"),
    ("no_end_header.ply", b"ply\nformat ascii 1.0\nelement vertex 1\n", "not a PLY file"),
    ("word_count.ply", ply(["element vertex two", *XYZI[1:]], ROWS), "vertex count must be"),
    ("negative_count.ply", ply(["element vertex -2", *XYZI[1:]], ROWS), "vertex count must be"),
    ("missing_count.ply", ply(["element vertex", *XYZI[1:]], ROWS), "expected 'element NAME COUNT'"),
    ("list_property.ply", ply([*XYZI, "property list uchar int idx"], ROWS), "list properties"),
    ("unknown_type.ply", ply([*XYZI[:-1], "property float128 intensity"], ROWS), "unknown PLY property type"),
    ("property_first.ply", ply(["property float x", *XYZI], ROWS), "property before any element"),
    ("no_vertex.ply", ply(["element face 1", "property int a"], b"1\n"), "vertex element must come first"),
    ("face_first.ply", ply(["element face 1", "property int a", *XYZI], ROWS), "vertex element must come first"),
    ("no_properties.ply", ply(["element vertex 2"], ROWS), "has no properties"),
    ("duplicate_property.ply", ply([*XYZI, "property float x"], ROWS), "declared twice"),
    ("short_property.ply", ply([*XYZI, "property float"], ROWS), "expected 'property TYPE NAME'"),
    ("unknown_line.ply", ply(["elephant vertex 2", *XYZI], ROWS), "unknown PLY header line"),
    ("fewer_rows.ply", ply(XYZI, b"1 2 3 0.5\n"), "expected 2 vertices, found 1"),
    ("more_rows.ply", ply(XYZI, ROWS + b"7 8 9 0.2\n"), "3 data rows but the header declares 2"),
    ("words_in_rows.ply", ply(XYZI, b"1 2 3 0.5\n4 five 6 0.1\n"), "malformed ascii PLY"),
    ("short_rows.ply", ply(XYZI, b"1 2 3\n4 5 6\n"), "hold 3 values, the header declares 4"),
    ("unknown_format.ply", ply(XYZI, ROWS, fmt="binary_middle_endian"), "unsupported PLY format"),
    ("truncated_binary.ply", ply(XYZI, bytes(20), fmt="binary_little_endian"), "truncated: 2 vertices need 32"),
    ("extra_binary.ply", ply(XYZI, bytes(40), fmt="binary_little_endian"), "8 bytes after"),
    ("latin1_header.ply", ply(["comment caf\xe9".encode("latin-1").decode("latin-1"), *XYZI], ROWS)
     .replace("café".encode(), b"caf\xe9"), "not ASCII"),
    ("no_z.ply", ply(["element vertex 2", "property float x", "property float y", "property float i"],
                     b"1 2 0.5\n4 5 0.1\n"), "missing coordinate fields"),
    ("no_data_line.pcd", pcd(drop=("DATA",)), "no DATA line"),
    ("no_fields.pcd", pcd(drop=("FIELDS",)), "lacks FIELDS"),
    ("no_size.pcd", pcd(drop=("SIZE",)), "lacks SIZE"),
    ("no_type.pcd", pcd(drop=("TYPE",)), "lacks TYPE"),
    ("no_points.pcd", pcd(drop=("POINTS",)), "lacks POINTS"),
    ("fields_sizes_differ.pcd", pcd(size="4 4 4"), "4 FIELDS, 3 SIZE"),
    ("types_differ.pcd", pcd(type_="F F F F F"), "5 TYPE"),
    ("count_differs.pcd", pcd(count="1 1"), "2 COUNT"),
    ("word_points.pcd", pcd(points="many"), "PCD POINTS must be"),
    ("negative_points.pcd", pcd(points="-2"), "PCD POINTS must be"),
    ("count_3.pcd", pcd(count="1 1 1 3"), "data rows hold 4 values, FIELDS and COUNT declare 6"),
    ("count_0.pcd", pcd(count="1 1 1 0"), "COUNT must be at least 1"),
    ("padding_named_x.pcd", pcd(fields="x y z x"), "repeat a name"),
    ("word_size.pcd", pcd(size="4 4 4 four"), "PCD SIZE must be"),
    ("unsupported_type.pcd", pcd(type_="F F F Q"), "unsupported PCD field types"),
    ("lzf_sizes.pcd", pcd(data="binary_compressed", body=struct.pack("<II", 4, 40) + b"\x02abc"),
     "unpacks to 40 bytes; the header's fields and POINTS need 32"),
    ("lzf_cut.pcd", pcd(data="binary_compressed", body=struct.pack("<II", 40, 32) + b"\x1f" + bytes(31)),
     "truncated: 40 bytes of compressed data declared, 32 present"),
    ("lzf_no_sizes.pcd", pcd(data="binary_compressed", body=b"\x01"), "has no size fields"),
    ("lzf_bomb.pcd", pcd(data="binary_compressed", points="1000000", body=struct.pack("<II", 3, 16_000_000) + b"\xe0\xff\x00"),
     "3 bytes of LZF data cannot unpack to 16000000"),
    ("lzf_copy_before_start.pcd", pcd(data="binary_compressed", body=struct.pack("<II", 4, 32) + b"\x00a\x40\x05"),
     "a copy from 6 bytes back"),
    ("lzf_short.pcd", pcd(data="binary_compressed", body=struct.pack("<II", 4, 32) + b"\x02abc"),
     "unpacks to 3 bytes, 32 expected"),
    ("lzw.pcd", pcd(data="binary_lzw"), "PCD DATA 'binary_lzw' is not supported"),
    ("duplicate_field.pcd", pcd(fields="x y z x"), "repeat a name"),
    ("truncated_binary.pcd", pcd(data="binary", body=bytes(20)), "2 points need 32 bytes"),
    ("extra_binary.pcd", pcd(data="binary", body=bytes(36)), "2 points need 32 bytes of data, found 36"),
    ("rows_mismatch.pcd", pcd(body=b"1 2 3 0.5\n"), "1 data rows but POINTS declares 2"),
    ("words_in_rows.pcd", pcd(body=b"1 2 3 0.5\n4 x 6 0.1\n"), "malformed ascii PCD"),
    ("latin1_header.pcd", b"# caf\xe9\n" + pcd(), "not ASCII"),
    ("truncated.las", las()[:300], "4 points of 34 bytes claimed, 73 bytes of point data present"),
    ("header_only.las", b"LASF" + bytes(40), "truncated: 44 bytes, shorter than a LAS header"),
    ("not_las.las", b"LASZ" + bytes(400), "no 'LASF' signature"),
    ("truncated.laz", las(True)[:-30], "damaged LAZ: chunk table at byte"),
    ("las_named_laz.laz", las()[:200], "shorter than a LAS header"),
    ("version_2.las", las_edit(las(), (24, "<B", 2)), r"unsupported LAS version 2.2 \(1.0-1.5 are read\)"),
    ("header_size_huge.las", las_edit(las(), (94, "<H", 60000)), "header size 60000 and point data offset 227"),
    ("points_offset_beyond.las", las_edit(las(), (96, "<I", 10**9)), "point data offset 1000000000"),
    ("billions_of_vlrs.las", las_edit(las(), (100, "<I", 2**31)), "2147483648 VLRs claimed in 0 bytes"),
    ("record_too_short.las", las_edit(las(), (105, "<H", 10)), "point format 3 with 10-byte records"),
    ("format_11.las", las_edit(las(), (104, "<B", 11)), "point format 11"),
    ("points_beyond_data.las", las_edit(las(), (107, "<I", 10**9)), "1000000000 points of 34 bytes claimed"),
    ("millions_of_evlrs.las", las_edit(las(version="1.4", point_format=6), (243, "<I", 10**6)),
     "1000000 extended VLRs claimed"),
    ("points_claimed_huge.laz", las_edit(las(True), (107, "<I", 4 * 10**9)),
     "4000000000 points claimed in .* bytes of compressed data"),
    ("laz_chunk_size_huge.laz", las_edit(las(True), (LASZIP_DATA + 12, "<I", 2_030_093_131)),
     "chunks of 2030093131 points"),
    ("laz_item_sizes.laz", las_edit(las(True), (LASZIP_DATA + 34 + 2, "<H", 21)), "items add up to 35 bytes"),
    ("laz_item_count.laz", las_edit(las(True), (LASZIP_DATA + 32, "<H", 65535)), "lists 65535 items in 52 bytes"),
    ("laz_without_laszip_vlr.laz", las_edit(las(True), (227 + 2, "<16s", b"someone else")), "without LASzip's VLR"),
    ("laz_table_beyond.laz", las_edit(las(True), (las_points_at, "<q", 10**12)), "chunk table at byte 1000000000000"),
    ("laz_table_count.laz", las_edit(las(True), (lambda d: laz_table_at(d) + 4, "<I", 1_600_000_000)),
     "chunk table version 0 with 1600000000 chunks for 4 points"),
    ("laz_table_version.laz", las_edit(las(True), (laz_table_at, "<I", 7)), "chunk table version 7"),
    # bytes inserted into the compressed points: the chunk table's offset now lands 10 bytes early
    ("laz_points_shifted.laz", (lambda d, at: d[:at] + bytes(10) + d[at:])(las(True), 227 + 54 + 52 + 8 + 4),
     "damaged LAZ: chunk table"),
    ("unsupported.xyz", b"1 2 3\n", "unsupported point file type"),
]


@pytest.mark.parametrize("name, data, expected", POINT_FILES, ids=[c[0] for c in POINT_FILES])
def test_hostile_point_files(tmp_path, name, data, expected):
    from zeroseg3d.datasets.io import read_points

    path = tmp_path / name
    path.write_bytes(data)
    refused(lambda: read_points(path), path, expected)


def refused(call, path, expected):
    with pytest.raises(ZeroSeg3DError, match=expected) as error:
        call()
    message = str(error.value)
    assert "\n" not in message and str(path) in message, message


# -- a SemanticKITTI sequence: (case, file -> bytes changes, expected words) -------------
RIGID_ZERO = "Tr: " + " ".join(["0"] * 12) + "\n"
SEQUENCE_CASES = [
    ("calib_not_utf8", {"calib.txt": b"P2: 700 \xff\n"}, "not UTF-8"),
    ("calib_no_p2", {"calib.txt": b"Tr: 0 -1 0 0 0 0 -1 -0.08 1 0 0 -0.27\n"}, "missing calibration key 'P2'"),
    ("calib_no_tr", {"calib.txt": b"P2: 700 0 600 45 0 700 180 0 0 0 1 0.003\n"}, "missing calibration key 'Tr'"),
    ("calib_tr_11_values", {"calib.txt": CALIB.replace("-0.27", "").encode()}, "Tr has 11 values"),
    ("calib_tr_singular", {"calib.txt": (CALIB.split("Tr")[0] + RIGID_ZERO).encode()}, "Tr is not a rigid"),
    ("calib_tr_scaled", {"calib.txt": CALIB.replace("0 -1 0 0 0 0 -1", "0 -2 0 0 0 0 -2").encode()},
     "Tr is not a rigid"),
    ("calib_tr_mirrored", {"calib.txt": CALIB.replace("1 0 0 -0.27", "-1 0 0 -0.27").encode()}, "Tr is not a rigid"),
    ("calib_zero_focal", {"calib.txt": CALIB.replace("P2: 700", "P2: 0").encode()}, "not a camera matrix"),
    ("calib_words", {"calib.txt": CALIB.replace("700 180", "seven 180").encode()}, "non-numeric value"),
    ("calib_nan", {"calib.txt": CALIB.replace("-0.27", "nan").encode()}, "non-finite"),
    ("calib_no_colon_line", {"calib.txt": (CALIB + ":\n").encode()}, "expected 'KEY: values'"),
    ("calib_s2_fraction", {"calib.txt": (CALIB + "S2: 1241.5 376\n").encode()}, "S2 must be two whole numbers"),
    ("calib_s2_negative", {"calib.txt": (CALIB + "S2: -1241 376\n").encode()}, "S2 must be two whole numbers"),
    ("calib_s2_three", {"calib.txt": (CALIB + "S2: 1241 376 3\n").encode()}, r"S2 must be \[width, height\]"),
    ("calib_s2_huge", {"calib.txt": (CALIB + "S2: 100000 376\n").encode()}, "S2 must be two whole numbers"),
    ("poses_not_utf8", {"poses.txt": b"1 0 0 0 \xfe\n"}, "not UTF-8"),
    ("poses_11_values", {"poses.txt": b"1 0 0 0 0 1 0 0 0 0 1\n"}, "pose 1 holds 11 values"),
    ("poses_words", {"poses.txt": POSE.replace("1 0 0 0 0", "one 0 0 0 0", 1).encode()}, "12 numbers"),
    ("poses_nan", {"poses.txt": POSE.replace("0 0 1 0", "0 0 1 nan").encode()}, "pose 1 is not a rigid"),
    ("poses_not_rigid", {"poses.txt": POSE.replace("1 0 0 0 0 1", "3 0 0 0 0 1").encode()}, "pose 1 is not a rigid"),
    ("poses_too_few", {"poses.txt": b"", "velodyne/000001.bin": GOOD.tobytes()}, "0 poses but scan"),
    ("label_truncated", {"labels/000000.label": bytes(7)}, "not a multiple of 4"),
    ("label_count", {"labels/000000.label": bytes(12)}, "3 labels for 4 points"),
    ("label_unknown_id", {"labels/000000.label": np.array([10, 10, 10, 4000], np.uint32).tobytes()},
     "raw ids unknown"),
    ("label_is_folder", {"labels/000000.label": None, "labels/000000.label/": b""}, "not a file"),
    ("image_huge_header", {"image_2/000000.png": png(claimed=(100000, 100000))}, "too large|100000x100000"),
    ("image_claims_20000", {"image_2/000000.png": png(claimed=(20000, 6000))}, "20000x6000"),
    ("image_truncated", {"image_2/000000.png": png()[:45]}, "unreadable or truncated"),
    ("image_not_an_image", {"image_2/000000.png": b"GIF? no"}, "unreadable or truncated"),
    ("image_missing", {"image_2/000000.png": None, "image_2/keep.txt": b""}, "missing image"),
    ("image_other_size", {"velodyne/000001.bin": GOOD.tobytes(), "poses.txt": (POSE * 2).encode(),
                          "image_2/000001.png": png((9, 6))}, "unexpected size 9x6"),
]


def write_sequence(folder: Path, changes: dict):
    files = {"velodyne/000000.bin": GOOD.tobytes(), "calib.txt": CALIB.encode(), "poses.txt": POSE.encode(),
             "labels/000000.label": np.array([10, 40, 50, 70], np.uint32).tobytes(),
             "image_2/000000.png": png()}
    files.update(changes)
    for name, data in files.items():
        if data is None:
            continue
        path = folder / name
        if name.endswith("/"):
            path.mkdir(parents=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@pytest.mark.parametrize("case, changes, expected", SEQUENCE_CASES, ids=[c[0] for c in SEQUENCE_CASES])
def test_hostile_sequence_files(tmp_path, case, changes, expected):
    from zeroseg3d.datasets.semantickitti import SemanticKITTISequence
    from zeroseg3d.datasets.vocabulary import Vocabulary

    folder = tmp_path / "sequences" / "00"
    write_sequence(folder, changes)

    def load_all():
        sequence = SemanticKITTISequence(folder, Vocabulary.load("semantickitti"))
        for index in range(len(sequence)):
            frame = sequence.load(index)
            frame.cameras[0].load_image()

    refused(load_all, folder, expected)


# -- sidecars of the user's own scans ------------------------------------------------------
CAMERA = ("cameras:\n  - name: front\n    K: [[500, 0, 320], [0, 500, 240], [0, 0, 1]]\n"
          "    T_cam_from_lidar: [[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]]\n"
          "    image_size: [640, 480]\n")
SIDECAR_CASES = [
    ("not_utf8", CAMERA.encode().replace(b"front", b"fr\xffont"), "not UTF-8"),
    ("not_a_mapping", b"- 1\n- 2\n", "must hold a mapping"),
    ("bad_yaml", b"cameras: [\n", "unreadable sidecar"),
    ("alias_bomb", yaml_bomb().encode(), "unreadable sidecar"),
    ("cameras_mapping", b"cameras:\n  front: {K: 1}\n", "cameras must be a list"),
    ("camera_not_mapping", b"cameras: [front]\n", "camera 0 must be a mapping"),
    ("image_size_number", CAMERA.replace("[640, 480]", "640").encode(), r"must be \[width, height\]"),
    ("image_size_words", CAMERA.replace("[640, 480]", "[wide, tall]").encode(), r"must be \[width, height\]"),
    ("image_size_zero", CAMERA.replace("[640, 480]", "[0, 480]").encode(), "whole numbers of pixels"),
    ("image_size_fraction", CAMERA.replace("[640, 480]", "[640.5, 480]").encode(), "whole numbers of pixels"),
    ("image_size_bool", CAMERA.replace("[640, 480]", "[true, 480]").encode(), "whole numbers of pixels"),
    ("no_image_size", CAMERA.replace("    image_size: [640, 480]\n", "").encode(), "needs image_size"),
    ("K_2x2", CAMERA.replace("[[500, 0, 320], [0, 500, 240], [0, 0, 1]]", "[[1, 0], [0, 1]]").encode(),
     "not a camera matrix"),
    ("K_zeros", CAMERA.replace("[[500, 0, 320], [0, 500, 240], [0, 0, 1]]", "[[0, 0, 0], [0, 0, 0], [0, 0, 0]]")
     .encode(), "not a camera matrix"),
    ("K_words", CAMERA.replace("500, 0, 320", "five, 0, 320").encode(), "must be numbers"),
    ("T_singular", CAMERA.replace("[1, 0, 0, 0], [0, 0, 0, 1]", "[0, 0, 0, 0], [0, 0, 0, 1]").encode(),
     "not a rigid transform"),
    ("T_nan", CAMERA.replace("[1, 0, 0, 0], [0, 0, 0, 1]", "[1, 0, 0, .nan], [0, 0, 0, 1]").encode(),
     "non-finite"),
    ("T_ten_values", CAMERA.replace("[[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]]",
                                    "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]").encode(), "has 10 values"),
    ("no_K", CAMERA.replace("    K: [[500, 0, 320], [0, 500, 240], [0, 0, 1]]\n", "").encode(), "lacks K"),
    ("image_not_a_name", (CAMERA + "    image: [1, 2]\n").encode(), "must be a file name"),
    ("image_missing", (CAMERA + "    image: front.png\n").encode(), "missing image"),
    ("labels_missing", (CAMERA + "labels: scan.label\n").encode(), "label file not found"),
]


@pytest.mark.parametrize("case, data, expected", SIDECAR_CASES, ids=[c[0] for c in SIDECAR_CASES])
def test_hostile_sidecars(tmp_path, case, data, expected):
    from zeroseg3d.datasets.custom import read_scan
    from zeroseg3d.datasets.vocabulary import Vocabulary

    (tmp_path / "scan.bin").write_bytes(GOOD.tobytes())
    (tmp_path / "scan.yaml").write_bytes(data)
    refused(lambda: read_scan(tmp_path / "scan.bin", Vocabulary.load("semantickitti")), tmp_path, expected)


# -- vocabularies and configs ----------------------------------------------------------
VOCABULARY = "name: mine\nclasses:\n  - {name: car, raw_ids: [10], color: [0, 0, 255]}\n  - {name: road, raw_ids: [40]}\n"
VOCABULARY_CASES = [
    ("raw_id_negative", VOCABULARY.replace("[10]", "[-1]").encode(), "raw id -1"),
    ("raw_id_huge", VOCABULARY.replace("[10]", "[10000000000000]").encode(), "raw id 10000000000000"),
    ("raw_id_fraction", VOCABULARY.replace("[10]", "[1.5]").encode(), "raw id 1.5"),
    ("raw_id_twice", VOCABULARY.replace("[40]", "[10]").encode(), "maps to two classes"),
    ("color_out_of_range", VOCABULARY.replace("[0, 0, 255]", "[300, 0, 0]").encode(), "color"),
    ("color_two_values", VOCABULARY.replace("[0, 0, 255]", "[0, 0]").encode(), "color"),
    ("not_a_mapping", b"- car\n- road\n", "a vocabulary is a mapping"),
    ("classes_not_a_list", b"classes: car\n", "a vocabulary is a mapping"),
    ("class_twice", VOCABULARY.replace("name: road", "name: Car").encode(), "appears twice"),
    ("no_classes", b"name: empty\nclasses: []\n", "has no classes"),
    ("not_utf8", VOCABULARY.encode().replace(b"road", b"r\xffoad"), "not UTF-8"),
    ("ignored_words", (VOCABULARY + "ignored: [zero]\n").encode(), "malformed vocabulary"),
    ("alias_bomb", yaml_bomb().encode(), "invalid YAML"),
]


@pytest.mark.parametrize("case, data, expected", VOCABULARY_CASES, ids=[c[0] for c in VOCABULARY_CASES])
def test_hostile_vocabularies(tmp_path, case, data, expected):
    from zeroseg3d.datasets.vocabulary import Vocabulary

    path = tmp_path / "vocabulary.yaml"
    path.write_bytes(data)
    refused(lambda: Vocabulary.load(path), path, expected)


CONFIG_CASES = [
    ("base_is_a_number", b"_base_: 123\n", [], "_base_"),
    ("base_missing", b"_base_: nowhere.yaml\n", [], "nowhere.yaml"),
    ("not_utf8", b"run: {name: \xff}\n", [], "not UTF-8"),
    ("alias_bomb", yaml_bomb().encode(), [], "alias"),
    ("bad_yaml", b"data: [\n", [], "line"),
    ("unknown_section", b"dat: {root: x}\n", [], "dat"),
    ("unknown_key", b"data: {voxel: 0.1}\n", [], "voxel"),
    ("negative_voxel", b"{}\n", ["data.voxel_size=-1"], "voxel_size"),
    ("zero_batch", b"{}\n", ["train.batch_size=0"], "batch_size"),
    ("unknown_backbone", b"{}\n", ["model.backbone=nonexistent"], "nonexistent"),
    ("unknown_readout", b"{}\n", ["teacher.readout=bogus"], "bogus"),
    ("override_without_equals", b"{}\n", ["train.lr"], "train.lr"),
    ("override_unknown_key", b"{}\n", ["train.nope=1"], "nope"),
    ("override_wrong_type", b"{}\n", ["train.epochs_guided=many"], "epochs_guided"),
    ("negative_occlusion", b"{}\n", ["data.pairing.occlusion.radius_px=-1"], "occlusion"),
    ("rotation_over_180", b"{}\n", ["data.augment.rotate_z_deg=720"], "rotate_z_deg"),
    ("zero_temperature", b"{}\n", ["loss.local_temperature=0"], "local_temperature"),
    ("threshold_over_one", b"{}\n", ["loss.pseudo_threshold=1.5"], "pseudo_threshold"),
]


@pytest.mark.parametrize("case, data, overrides, expected", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_hostile_configs(tmp_path, case, data, overrides, expected):
    from zeroseg3d.config import load_config
    from zeroseg3d.errors import ConfigError

    path = tmp_path / "config.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError, match=expected) as error:
        load_config(path, overrides)
    assert "\n" not in str(error.value), str(error.value)


def test_the_corpus_covers_every_input_path_with_over_a_hundred_files():
    counts = {"point files": len(POINT_FILES), "sequences": len(SEQUENCE_CASES), "sidecars": len(SIDECAR_CASES),
              "vocabularies": len(VOCABULARY_CASES), "configs": len(CONFIG_CASES)}
    assert sum(counts.values()) >= 100, counts
