"""Hostile nuScenes tables: the devkit trusts them (a KeyError, a JSON error, an assertion or a
sample chain that loops for ever); zeroseg3d refuses each in one line naming the table."""

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("nuscenes")
from test_nuscenes_fixture import VERSION, write_fixture  # noqa: E402

from zeroseg3d.cli import main  # noqa: E402
from zeroseg3d.datasets.nuscenes import NuScenesLidarSeg, read_table  # noqa: E402
from zeroseg3d.errors import DataError  # noqa: E402

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return write_fixture(tmp_path_factory.mktemp("nuscenes") / "root")


@pytest.fixture
def root(pristine, tmp_path):
    import shutil

    return shutil.copytree(pristine, tmp_path / "root")


def _edit(root, table, change):
    """Rewrite one table: ``change`` takes its records and returns records, text or bytes."""
    path = root / VERSION / f"{table}.json"
    out = change(json.loads(path.read_text()))
    path.write_bytes(out if isinstance(out, bytes) else (out if isinstance(out, str) else json.dumps(out)).encode())


def _without(field):
    return lambda rows: [{k: v for k, v in r.items() if k != field} for r in rows]


def _set(field, value, where=lambda r: True):
    return lambda rows: [dict(r, **{field: value}) if where(r) else r for r in rows]


def _camera(r):
    return bool(r.get("camera_intrinsic")) if "camera_intrinsic" in r else r.get("fileformat") == "jpg"


def _lidar(r):
    return r.get("fileformat") == "pcd.bin"


# (name, table, change, file named, words of the message)
CORPUS = [
    ("not JSON", "sample_data", lambda rows: "{not json", "sample_data.json", "not valid JSON"),
    ("empty file", "sample", lambda rows: "", "sample.json", "not valid JSON: Expecting value (line 1, column 1)"),
    ("not UTF-8", "scene", lambda rows: b'[{"token": "\xff"}]', "scene.json", "not valid JSON"),
    ("deeply nested", "log", lambda rows: "[" * 100_000 + "]" * 100_000, "log.json", "not valid JSON"),
    ("a mapping, not a list", "scene", lambda rows: {"scene": rows}, "scene.json", "must be a list of records"),
    ("records are numbers", "sensor", lambda rows: [1, 2, 3], "sensor.json", "record 0 must be a mapping"),
    ("a record without token", "ego_pose", _without("token"), "ego_pose.json", "record 0 has no token"),
    ("scene without first sample", "scene", _without("first_sample_token"), "scene.json",
     "lacks 'first_sample_token'"),
    ("next names no sample", "sample", _set("next", "nope", lambda r: r["next"]), "sample.json",
     "next 'nope' is not a token of sample.json"),
    ("samples in a loop", "sample", _set("next", "sample0", lambda r: r["token"] == "sample1"), "sample.json",
     "reached twice"),
    ("two records share a token", "sample", lambda rows: rows + rows[:1], "sample.json", "share a token"),
    ("rotation of three numbers", "calibrated_sensor", _set("rotation", [1, 0, 0]), "calibrated_sensor.json",
     "'rotation' must be 4 finite numbers"),
    ("rotation of strings", "ego_pose", _set("rotation", ["1", 0, 0, 0]), "ego_pose.json", "4 finite numbers"),
    ("rotation not unit", "ego_pose", _set("rotation", [2.0, 0, 0, 0]), "ego_pose.json", "unit quaternion"),
    ("translation NaN", "ego_pose", _set("translation", [math.nan, 0, 0]), "ego_pose.json",
     "'translation' must be 3 finite numbers"),
    ("translation true", "calibrated_sensor", _set("translation", [True, 0, 0]), "calibrated_sensor.json",
     "3 finite numbers"),
    ("intrinsics 2x2", "calibrated_sensor", _set("camera_intrinsic", [[50, 0], [0, 50]], _camera),
     "calibrated_sensor.json", "is not a camera matrix"),
    ("intrinsics of zeros", "calibrated_sensor", _set("camera_intrinsic", [[0] * 3] * 3, _camera),
     "calibrated_sensor.json", "fx, fy > 0"),
    ("intrinsics of strings", "calibrated_sensor", _set("camera_intrinsic", [["a", 0, 0], [0, 1, 0], [0, 0, 1]], _camera),
     "calibrated_sensor.json", "is not a camera matrix"),
    ("width a string", "sample_data", _set("width", "wide"), "sample_data.json", "'width' must be a whole number"),
    ("negative width", "sample_data", _set("width", -160, _camera), "sample_data.json",
     "two whole numbers of pixels"),
    ("key frame flag a string", "sample_data", _set("is_key_frame", "yes"), "sample_data.json",
     "'is_key_frame' must be true or false"),
    ("absolute file name", "sample_data", _set("filename", "/etc/passwd", _lidar), "sample_data.json",
     "inside the dataset root"),
    ("file name out of the root", "sample_data", _set("filename", "samples/../../x.pcd.bin", _lidar),
     "sample_data.json", "inside the dataset root"),
    ("file name a number", "sample_data", _set("filename", 5), "sample_data.json", "'filename' must be a file name"),
    ("no lidar key frame", "sample_data", lambda rows: [r for r in rows if not _lidar(r)], "sample_data.json",
     "has no LIDAR_TOP key frame"),
    ("ego pose missing", "ego_pose", lambda rows: [], "sample_data.json",
     "ego_pose_token 'ep_lidar' is not a token of ego_pose.json"),
    ("sensor missing", "sensor", lambda rows: rows[1:], "calibrated_sensor.json", "is not a token of sensor.json"),
    ("log in no map", "map", _set("log_tokens", []), "map.json", "no map lists log 'log0'"),
    ("map log tokens not strings", "map", _set("log_tokens", [{"a": 1}]), "map.json", "must be token strings"),
    ("categories renamed", "category", lambda rows: [dict(r, name=f"thing{i}") for i, r in enumerate(rows)],
     "category.json", "'thing0' is not one of nuScenes-lidarseg's categories"),
    ("two categories swap their indices", "category",
     lambda rows: [dict(r, index={17: 23, 23: 17}.get(r["index"], r["index"])) for r in rows], "category.json",
     "category index 23 is 'vehicle.car', but vocabulary 'nuscenes' reads label 23 as 'vehicle.truck'"),
    ("category without index", "category", _without("index"), "", "category.json that comes with nuScenes-lidarseg"),
    ("categories the labels use are missing", "category", lambda rows: rows[:5], "sd_LIDAR_TOP_0_lidarseg.bin",
     "label 17 is no category"),
    ("a label file unlisted", "lidarseg", lambda rows: rows[:1], VERSION, "2 label files but 1 lidarseg records"),
    ("lidarseg names another sample data", "lidarseg", _set("token", "elsewhere", lambda r: r["token"] == "sd_LIDAR_TOP_0"),
     "lidarseg.json", "no record for the LIDAR_TOP key frame 'sd_LIDAR_TOP_0'"),
]


@pytest.mark.parametrize("name, table, change, named, words", CORPUS, ids=[c[0] for c in CORPUS])
def test_a_damaged_table_is_refused_in_one_line_naming_it(root, name, table, change, named, words):
    _edit(root, table, change)
    with pytest.raises(DataError) as caught:
        dataset = NuScenesLidarSeg(root, VERSION, "all")
        for index in range(len(dataset)):
            dataset[index]
    message = str(caught.value)
    assert "\n" not in message and named in str(caught.value.path) and words in message, message


def test_the_command_line_says_one_line_and_exits_2(root, capsys):
    _edit(root, "sample", _set("next", "sample0", lambda r: r["token"] == "sample1"))
    assert main(["data", "inspect", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sample.json" in err and "reached twice" in err, err


def test_an_intact_copy_still_reads(root):
    dataset = NuScenesLidarSeg(root, VERSION, "all")
    assert [dataset[i].num_points for i in range(len(dataset))] == [4, 4]


def test_an_empty_lidarseg_table_leaves_the_frames_unlabelled(root):
    """v1.0-test's lidarseg table is empty: its frames have no labels, not a refusal."""
    for path in (root / "lidarseg" / VERSION).iterdir():
        path.unlink()
    _edit(root, "lidarseg", lambda rows: [])
    dataset = NuScenesLidarSeg(root, VERSION, "all")
    assert [dataset[i].labels for i in range(len(dataset))] == [None, None]


def test_the_column_checks_accept_what_the_record_checks_accept(tmp_path):
    """The quick whole-column test may send a table to the exact per-record one (a file name
    with '..' inside a name), which then accepts it."""
    path = tmp_path / "lidarseg.json"
    rows = [{"token": "a", "filename": "lidarseg/a..b.bin"}, {"token": "b", "filename": "x/y.bin"}]
    path.write_text(json.dumps(rows))
    assert read_table(path, "lidarseg") == rows
    path.write_text(json.dumps(rows + [{"token": "c", "filename": "x/../../y.bin"}]))
    with pytest.raises(DataError, match=r"record 2 \(token 'c'\): 'filename' must be a file name inside"):
        read_table(path, "lidarseg")


# values of the wrong kind for any field
ODD_VALUES = st.sampled_from([None, True, 0, -1, 2**70, 1.5, math.inf, "", "x", "../x", "/abs", [], [1, 2],
                              [0.0, 0.0, 0.0, 0.0], [[1]], {}, {"token": "x"}])
TABLES = ["category", "sensor", "calibrated_sensor", "ego_pose", "log", "map", "scene", "sample",
          "sample_data", "lidarseg"]


@st.composite
def table_edits(draw):
    """A few edits of the fixture's tables: a field removed or given an odd value, a record
    dropped or duplicated, or bytes of the JSON text cut, changed or inserted."""
    edits = []
    for _ in range(draw(st.integers(1, 3))):
        table = draw(st.sampled_from(TABLES))
        kind = draw(st.sampled_from(["remove", "odd", "odd", "drop", "duplicate", "bytes"]))
        edits.append((table, kind, draw(st.integers(0, 10**6)), draw(st.integers(0, 10**6)), draw(ODD_VALUES),
                      draw(st.binary(min_size=1, max_size=6))))
    return edits


def _apply(root, edits):
    for table, kind, a, b, value, data in edits:
        path = root / VERSION / f"{table}.json"
        if kind == "bytes":
            text = path.read_bytes()
            at = a % (len(text) + 1)
            path.write_bytes(text[:at] + data + text[at + b % 3:])
            continue
        try:
            rows = json.loads(path.read_text())
        except ValueError:
            continue   # an earlier edit garbled its bytes
        if not isinstance(rows, list) or not rows or not isinstance(rows[a % len(rows)], dict):
            continue
        at = a % len(rows)
        record, fields = rows[at], sorted(rows[at])
        if kind == "remove":
            record.pop(fields[b % len(fields)])
        elif kind == "odd":
            record[fields[b % len(fields)]] = value
        elif kind == "drop":
            rows.pop(at)
        else:
            rows.insert(b % len(rows), dict(record))
        path.write_text(json.dumps(rows))


@FUZZ
@given(edits=table_edits())
def test_edited_tables_are_read_or_refused_in_one_line(pristine, tmp_path_factory, edits):
    import shutil

    root = shutil.copytree(pristine, tmp_path_factory.mktemp("edited") / "root")
    _apply(root, edits)
    try:
        dataset = NuScenesLidarSeg(root, VERSION, "all")
        frames = [dataset[i] for i in range(len(dataset))]
    except DataError as exc:
        assert "\n" not in str(exc) and exc.path is not None and root in [exc.path, *exc.path.parents], str(exc)
        return
    for frame in frames:   # what is accepted is what the readers' own checks pass
        assert np.isfinite(frame.points).all() and len(frame.labels) == frame.num_points
        for camera in frame.cameras:
            assert np.isfinite(camera.T_cam_from_lidar).all() and camera.K[0, 0] > 0
