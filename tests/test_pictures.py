"""Pictures: pixel-exact overlays, a legend, distinguishable colours, the confusion matrix."""

import numpy as np
from PIL import Image

from zeroseg3d.datasets.frame import Camera, Frame
from zeroseg3d.engine.export import MIN_COLOR_DISTANCE, palette
from zeroseg3d.engine.visualize import camera_overlay, confusion_picture, depth_overlay, scan_pictures
from zeroseg3d.geometry.projection import OcclusionConfig, PairingConfig, pair_points


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
