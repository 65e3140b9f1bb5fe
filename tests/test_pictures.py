"""Pictures: pixel-exact overlays, a legend, distinguishable colours, the confusion matrix."""

import numpy as np
import pytest
from PIL import Image

from zeroseg3d.datasets.frame import Camera, Frame
from zeroseg3d.engine.export import MIN_COLOR_DISTANCE, palette
from zeroseg3d.engine.visualize import camera_overlay, confusion_picture, depth_overlay, scan_pictures
from zeroseg3d.geometry.config import OcclusionConfig, PairingConfig
from zeroseg3d.geometry.projection import pair_points


def test_palette_keeps_official_colours_and_separates_lookalikes():
    names = ["car", "person", "traffic-sign", "fire hydrant", "fire hydrant 2", "road"]
    colors = palette(names).astype(float)
    assert tuple(colors[0]) == (100, 150, 245)      # SemanticKITTI's car
    assert tuple(colors[1]) == (255, 30, 30)        # its person
    # its traffic-sign is red as well: it gets another colour here
    distance = np.linalg.norm(colors[:, None] - colors[None], axis=2)
    assert distance[np.triu_indices(len(names), 1)].min() >= MIN_COLOR_DISTANCE
    np.testing.assert_array_equal(palette(names), palette(names))


def _frame_with_camera(width=64, height=32):
    K = np.array([[20.0, 0, width / 2 - 0.5], [0, 20.0, height / 2 - 0.5], [0, 0, 1]])
    T = np.array([[0.0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]])   # looks along +x
    image = np.full((height, width, 3), 40, np.uint8)
    camera = Camera("front", K, T, (width, height), image=image)
    points = np.array([[10.0, 0, 0, 0], [10.0, 5, 1, 0], [-10.0, 0, 0, 0]], np.float32)
    return Frame("s/000000", points, [camera], labels=np.array([1, 0, 1]))


def test_overlay_paints_each_projected_point_in_its_class_colour(tmp_path):
    frame = _frame_with_camera()
    pairing = pair_points(frame.xyz, frame.cameras, PairingConfig(occlusion=OcclusionConfig(enabled=False)))
    assert sorted(pairing.point_idx.tolist()) == [0, 1]          # the point behind is not seen
    names, colors = ["road", "car"], palette(["road", "car"])
    predicted = np.array([1, 0, 0])
    written = scan_pictures(frame, pairing, predicted, frame.labels, names, colors, tmp_path, "scan")
    assert [p.name for p in written] == ["scan_bev.png", "scan_front.png"]
    picture = np.asarray(Image.open(tmp_path / "scan_front.png").convert("RGB"))
    assert picture.shape[1] == 64 and picture.shape[0] > 2 * 32     # prediction above ground truth, legend below
    for point, (u, v) in zip(pairing.point_idx, np.rint(pairing.uv).astype(int)):
        assert tuple(picture[v, u]) == tuple(colors[predicted[point]])             # prediction panel
        assert tuple(picture[32 + v, u]) == tuple(colors[frame.labels[point]])     # ground-truth panel
    assert tuple(picture[0, 0]) == (40, 40, 40)                     # the image where no point falls


def test_a_wrong_calibration_misses_the_objects(tmp_path):
    """The calibration check: points of an object drawn by depth land on the object's pixels
    with the right extrinsics and beside them with a shifted one."""
    frame = _frame_with_camera(width=96, height=48)
    camera = frame.cameras[0]
    image = camera.image.copy()
    # a bright box in the image where a 3D box 10 m ahead projects
    box = np.array([[10.0, y, z, 0] for y in np.linspace(-1, 1, 9) for z in np.linspace(-0.5, 0.5, 5)], np.float32)
    config = PairingConfig(occlusion=OcclusionConfig(enabled=False))
    right = pair_points(box[:, :3], [camera], config)
    cols, rows = np.rint(right.uv).astype(int).T
    image[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = 255
    shifted = Camera("front", camera.K, camera.T_cam_from_lidar @ np.array([[1, 0, 0, 0], [0, 1, 0, 1.5], [0, 0, 1, 0], [0, 0, 0, 1]]),
                     camera.image_size, image=image)

    def on_object(pairing):
        u, v = np.rint(pairing.uv).astype(int).T
        return (image[v, u] == 255).all(axis=1).mean()

    assert on_object(right) == 1.0
    wrong = pair_points(box[:, :3], [shifted], config)
    assert on_object(wrong) < 0.5
    path = depth_overlay(image, wrong.uv, wrong.depth, tmp_path / "check.png")
    assert np.asarray(Image.open(path)).shape == image.shape


def test_confusion_picture_and_legend(tmp_path):
    matrix = np.array([[8, 2, 0], [0, 5, 5]])
    path = confusion_picture(matrix, ["road", "car"], tmp_path / "c.png", unseen=["car"])
    assert Image.open(path).size[0] > 200
    overlay = camera_overlay(np.zeros((20, 200, 3), np.uint8), np.array([[5.0, 5.0]]), np.array([1]),
                             palette(["road", "car"]), tmp_path / "o.png", names=["road", "car"])
    legend = np.asarray(Image.open(overlay).convert("RGB"))[20:]
    assert legend.shape[0] > 0 and (legend == palette(["road", "car"])[1]).all(axis=2).any()   # car's box


def _recording(path):
    rerun = pytest.importorskip("rerun")
    table = rerun.dataframe.load_recording(str(path)).view(index="frame", contents="/**").select().read_all()
    return {name: table.column(name).to_pylist() for name in table.column_names if name != "log_time"}


def test_a_rerun_recording_holds_classes_confidence_truth_cameras_and_poses(tiny_run, tiny_checkpoint, tmp_path):
    pytest.importorskip("rerun")
    from zeroseg3d.cli import main
    from zeroseg3d.datasets.io import read_ply
    from zeroseg3d.datasets.semantickitti import SemanticKITTI
    from zeroseg3d.engine.checkpoint import load_checkpoint

    root, config_path, world = tiny_run
    sequence = world / "sequences" / "00"
    out = tmp_path / "pred"
    assert main(["predict", str(tiny_checkpoint), str(sequence), "--out", str(out), "--rerun",
                 str(out / "scans.rrd")]) == 0
    assert not list(out.glob(".*.tmp"))
    columns = _recording(out / "scans.rrd")
    frames = SemanticKITTI([sequence], "semantickitti")
    assert columns["frame"] == list(range(len(frames)))
    names = load_checkpoint(tiny_checkpoint)["vocabulary"]
    context = columns["/world:AnnotationContext"][0][0]   # static: the same on every row
    assert [c["class_description"]["info"]["label"] for c in context] == names
    packed = [int.from_bytes(bytes([*map(int, color), 255]), "big") for color in palette(names)]
    assert [c["class_description"]["info"]["color"] for c in context] == packed
    config = __import__("zeroseg3d.config", fromlist=["load_config"]).load_config(config_path)
    for index in range(len(frames)):
        frame = frames[index]
        predicted = read_ply(out / f"{frame.frame_id.replace('/', '_')}.ply")["label"]
        np.testing.assert_array_equal(columns["/world/lidar/points:ClassId"][index], predicted)
        np.testing.assert_allclose(columns["/world/lidar/points:Position3D"][index], frame.xyz, atol=1e-6)
        confidence = np.array(columns["/world/lidar/points:confidence"][index])
        assert confidence.shape == (frame.num_points,) and (confidence > 0).all() and (confidence <= 1).all()
        known = frame.labels >= 0
        assert len(columns["/world/lidar/truth:ClassId"][index]) == known.sum()
        # the scan placed in world coordinates by its pose
        np.testing.assert_allclose(columns["/world/lidar:Translation3D"][index][0], frame.pose[:3, 3], atol=1e-5)
        camera = frame.cameras[0]
        entity = f"/world/lidar/cameras/{camera.name}"
        np.testing.assert_allclose(np.reshape(columns[f"{entity}:PinholeProjection"][index][0], (3, 3)).T, camera.K,
                                   rtol=1e-6)
        assert bytes(columns[f"{entity}/image:Blob"][index][0]) == camera.image_path.read_bytes()
        pairing = pair_points(frame.xyz, frame.cameras, config.data.pairing)
        np.testing.assert_allclose(columns[f"{entity}/image/points:Position2D"][index], pairing.uv, atol=1e-4)
        np.testing.assert_array_equal(columns[f"{entity}/image/points:ClassId"][index], predicted[pairing.point_idx])


def test_rerun_recorders_are_independent_and_write_pixels_where_no_file_exists(tmp_path):
    pytest.importorskip("rerun")
    from zeroseg3d.engine.rerun_view import RerunRecorder

    frame = _frame_with_camera()
    pairing = pair_points(frame.xyz, frame.cameras, PairingConfig(occlusion=OcclusionConfig(enabled=False)))
    names = ["road", "car"]
    with RerunRecorder(names, palette(names), tmp_path / "a.rrd") as first, \
            RerunRecorder(names, palette(names), tmp_path / "b.rrd") as second:
        first.add(frame, np.array([1, 0, 1]), np.array([0.9, 0.5, 0.7]), pairing, frame.labels)
        second.add(frame, np.array([0, 0, 0]))
        second.add(frame, np.array([1, 1, 1]))
    a, b = _recording(tmp_path / "a.rrd"), _recording(tmp_path / "b.rrd")
    assert a["frame"] == [0] and b["frame"] == [0, 1]
    assert a["/world/lidar/points:ClassId"] == [[1, 0, 1]]
    assert b["/world/lidar/points:ClassId"] == [[0, 0, 0], [1, 1, 1]]
    assert "/world/lidar/truth:ClassId" not in b and "/world/lidar:Translation3D" not in a   # no labels, no pose
    # an image held in memory is stored as pixels; the camera sees two of the three points
    assert bytes(a["/world/lidar/cameras/front/image:ImageBuffer"][0][0]) == frame.cameras[0].image.tobytes()
    np.testing.assert_allclose(a["/world/lidar/cameras/front/image/points:Position2D"][0], pairing.uv, atol=1e-5)
    assert len(pairing.uv) == 2
    # a camera named like the points is still a camera beside them
    frame.cameras[0].name = "points"
    with RerunRecorder(names, palette(names), tmp_path / "c.rrd") as third:
        third.add(frame, np.array([1, 0, 1]), None, pairing)
    c = _recording(tmp_path / "c.rrd")
    assert c["/world/lidar/points:ClassId"] == [[1, 0, 1]] and "/world/lidar/cameras/points/image:ImageBuffer" in c


def test_without_rerun_sdk_the_view_is_refused_in_one_line(tiny_run, tiny_checkpoint, tmp_path, capsys,
                                                          monkeypatch):
    import sys

    from zeroseg3d.cli import main

    root, config_path, world = tiny_run
    monkeypatch.setitem(sys.modules, "rerun", None)   # as if not installed
    capsys.readouterr()
    assert main(["predict", str(tiny_checkpoint), str(world / "sequences" / "08"), "--out", str(tmp_path / "p"),
                 "--rerun", str(tmp_path / "p" / "x.rrd")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'zeroseg3d[view]'" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "p" / "x.rrd").exists()
