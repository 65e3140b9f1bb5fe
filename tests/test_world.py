"""The synthetic world: labels match geometry, camera and LiDAR agree, determinism."""

import hashlib

import numpy as np
import pytest

from zeroseg3d.cli import main
from zeroseg3d.datasets.semantickitti import SemanticKITTI
from zeroseg3d.geometry.projection import pair_points
from zeroseg3d.world import render
from zeroseg3d.world.generate import lidar_pose, render_frame, scene_for


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    assert main(["world", "generate", "--out", str(root), "--sequences", "2", "--frames", "2",
                 "--seed", "5", "--workers", "2"]) == 0
    return root


def _distance_to_primitive(scene, kind, index, p):
    """Unsigned distance from world points p (M, 3) to one primitive's surface (independent of the ray caster)."""
    if kind == 1:
        return np.abs(p[:, 2])
    if kind == 2:
        box = scene.boxes[index]
        c, s = np.cos(box["yaw"]), np.sin(box["yaw"])
        rel = p - box["center"]
        local = np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1], rel[:, 2]], 1)
        q = np.abs(local) - box["half"]
        outside = np.linalg.norm(np.maximum(q, 0), axis=1)
        return np.abs(outside + np.minimum(q.max(1), 0))
    if kind == 3:
        cyl = scene.cylinders[index]
        radial = np.linalg.norm(p[:, :2] - cyl["center"], axis=1) - cyl["radius"]
        vertical = np.maximum(cyl["z0"] - p[:, 2], p[:, 2] - cyl["z1"])
        return np.abs(np.where(vertical > 0, np.hypot(np.maximum(radial, 0), vertical),
                               np.maximum(radial, vertical)))
    ell = scene.ellipsoids[index]
    scaled = np.linalg.norm((p - ell["center"]) / ell["radii"], axis=1)
    return np.abs(scaled - 1) * ell["radii"].min()


def test_each_point_is_labelled_with_the_primitive_it_lies_on():
    seed, sequence, frame = 3, 0, 1
    scene, drive = scene_for(seed, sequence, 2)
    data = render_frame(seed, sequence, frame, 2)
    pose = lidar_pose(scene, drive, frame)
    world_xyz = data["points"][:, :3].astype(np.float64) @ pose[:3, :3].T + pose[:3, 3]
    kinds, indices = data["primitives"] // 1_000_000, data["primitives"] % 1_000_000
    assert set(np.unique(kinds)) <= {1, 2, 3, 4}
    distance = np.zeros(len(world_xyz))
    for kind in (1, 2, 3, 4):
        for index in np.unique(indices[kinds == kind]):
            rows = (kinds == kind) & (indices == index)
            distance[rows] = _distance_to_primitive(scene, kind, index, world_xyz[rows])
            if kind > 1:
                table = {2: scene.boxes, 3: scene.cylinders, 4: scene.ellipsoids}[kind]
                assert (data["labels"][rows] == table[index]["label"]).all()
    # range noise is 2 cm; beams meet edges at grazing angles, so allow a few outliers
    assert np.quantile(distance, 0.99) < 0.1
    ground = kinds == 1
    # the label is taken at the exact hit; range noise moves a point across a region border
    # (e.g. the edge of a lane marking) only rarely
    relabelled = scene.layout.label(world_xyz[ground, 0], world_xyz[ground, 1])
    assert (data["labels"][ground] == relabelled).mean() > 0.99
    # every class of the world shows up in a few frames
    assert {10, 40, 48, 50}.issubset(set(np.unique(data["labels"]).tolist()))


def test_frames_read_back_through_the_semantickitti_reader(world):
    dataset = SemanticKITTI.from_root(world, split="all")
    assert dataset.frame_ids == ["00/000000", "00/000001", "01/000000", "01/000001"]
    frame = dataset[1]
    assert 60_000 < frame.num_points < 131_000
    assert (frame.labels >= 0).all()
    camera = frame.cameras[0]
    assert camera.image_size == render.IMAGE_SIZE
    assert camera.load_image().shape == (192, 640, 3)
    np.testing.assert_allclose(camera.T_cam_from_lidar, render.t_cam2_from_lidar(), atol=1e-9)
    # poses: the ego moves forward along x between frames
    relative = np.linalg.inv(dataset[0].pose) @ frame.pose
    assert 0.7 < relative[0, 3] < 1.6


def test_camera_and_lidar_agree(world):
    from PIL import Image

    dataset = SemanticKITTI.from_root(world, split="all")
    agreement = []
    for index in range(len(dataset)):
        frame = dataset[index]
        folder = world / "sequences" / frame.frame_id.split("/")[0]
        pixel_labels = np.asarray(Image.open(folder / "image_2_labels" / f"{frame.frame_id.split('/')[1]}.png"))
        pairing = pair_points(frame.xyz, frame.cameras)
        cols = np.rint(pairing.uv[:, 0]).astype(int)
        rows = np.rint(pairing.uv[:, 1]).astype(int)
        pixel = dataset.vocabulary.map_raw(pixel_labels[rows, cols].astype(np.int64))
        agreement.append((pixel == frame.labels[pairing.point_idx]).mean())
    assert min(agreement) > 0.9, agreement


def test_the_world_config_lists_the_classes_the_world_renders():
    from pathlib import Path

    import yaml

    from zeroseg3d.datasets.vocabulary import Vocabulary
    from zeroseg3d.world.scene import RAW, WORLD_CLASSES

    config = yaml.safe_load((Path(__file__).parents[1] / "configs" / "world.yaml").read_text())
    assert config["data"]["classes"] == WORLD_CLASSES
    kitti = Vocabulary.load("semantickitti")
    rendered = {kitti.names[kitti.map_raw([raw])[0]] for raw in RAW.values()}
    assert rendered == set(WORLD_CLASSES)


def test_generation_is_deterministic(tmp_path, world):
    main(["world", "generate", "--out", str(tmp_path), "--sequences", "1", "--start", "1",
          "--frames", "2", "--seed", "5", "--workers", "1"])
    for sub in ("velodyne/000001.bin", "labels/000001.label", "image_2/000001.png", "poses.txt", "calib.txt"):
        a = hashlib.sha256((world / "sequences/01" / sub).read_bytes()).hexdigest()
        b = hashlib.sha256((tmp_path / "sequences/01" / sub).read_bytes()).hexdigest()
        assert a == b, sub
    # another seed builds another street
    mine, other = scene_for(5, 1, 2)[0].boxes, scene_for(6, 1, 2)[0].boxes
    assert len(mine["label"]) != len(other["label"]) or not np.allclose(mine["center"], other["center"])


def test_box_hits_with_rays_parallel_to_faces_and_a_turned_box():
    from zeroseg3d.world.raycast import BOX, _box_hits

    boxes = np.zeros(2, BOX)
    boxes["center"] = [(0, 0, 1), (10, 0, 1)]
    boxes["half"] = [(1, 1, 1), (2, 0.5, 1)]
    boxes["yaw"] = [0, np.pi / 2]   # the second box's long side along y
    # along x from the left: parallel to the y and z faces, inside their slabs for the first ray
    o = np.array([-5.0, 0, 1])
    t, normal, best, local = _box_hits(o, np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]]), boxes[:1])
    assert t[0] == 4 and np.allclose(normal[0], [-1, 0, 0]) and np.allclose(local[0], [-1, 0, 0])
    assert np.isinf(t[1:]).all()   # beside the box: parallel to a face pair, outside its slab
    t, *_ = _box_hits(np.array([-5.0, 3, 1]), np.array([[1.0, 0, 0]]), boxes[:1])
    assert np.isinf(t[0])
    # from below the turned box, straight up and along y: its half-widths swap in the world
    t, normal, best, _ = _box_hits(np.array([10.0, -5, 1]), np.array([[0, 1.0, 0]]), boxes)
    assert best[0] == 1 and np.isclose(t[0], 3) and np.allclose(normal[0], [0, -1, 0], atol=1e-12)
    t, _, best, _ = _box_hits(np.array([10.0, 0, -4]), np.array([[0, 0, 1.0]]), boxes)
    assert best[0] == 1 and np.isclose(t[0], 4)


def test_value_noise_is_the_smooth_blend_of_hashed_lattice_values():
    rng = np.random.default_rng(0)
    p = rng.uniform(-50, 50, (2000, 3))
    noise = render.value_noise(p, 0.5, 3)
    assert ((noise >= 0) & (noise < 1)).all() and noise.std() > 0.1
    assert np.array_equal(noise, render.value_noise(p, 0.5, 3))
    assert not np.allclose(noise, render.value_noise(p, 0.5, 4))   # the seed draws other values
    # smooth: a millimetre moves it little; at a lattice point it is that cell's value alone
    assert np.abs(render.value_noise(p + 1e-3, 0.5, 3) - noise).max() < 0.02
    corner = np.floor(p[:5] / 0.5) * 0.5
    c = (corner / 0.5).round().astype(np.int64)
    h = (c[:, 0] * 73856093) ^ (c[:, 1] * 19349663) ^ (c[:, 2] * 83492791) ^ (3 * 2654435761)
    h = (h ^ (h >> 13)) * 1274126177
    np.testing.assert_allclose(render.value_noise(corner, 0.5, 3), ((h ^ (h >> 16)) & 0xFFFF) / 65536.0)


def test_motorcycles_are_parked_and_unseen_classes_occur_in_most_streets():
    """Nobody rides a motorcycle in the world (its rider would be a motorcyclist, a class it
    lacks): motorcycles stand at the kerb, in parking strips or on sidewalks, never in the
    middle of a lane where riderless they would look like bicyclists from behind."""
    streets_with = {15: 0, 18: 0, 31: 0, 81: 0}  # motorcycle, truck, bicyclist, traffic-sign
    streets = 12
    for sequence in range(streets):
        scene, _ = scene_for(7, sequence, 2)
        labels = scene.boxes["label"]
        for raw in streets_with:
            streets_with[raw] += bool((labels == raw).any())
        motorcycle_y = np.abs(scene.boxes["center"][labels == 15][:, 1])
        assert (motorcycle_y > scene.layout.road_half - 2.0).all(), (sequence, motorcycle_y.min())
    assert all(count >= streets * 0.75 for count in streets_with.values()), streets_with
