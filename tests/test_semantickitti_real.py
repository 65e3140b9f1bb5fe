"""The reader on real SemanticKITTI frames (sequence 00, frames 0-2) with known answers."""

import numpy as np

from test_vocabulary import KITTI_LEARNING_MAP
from zeroseg3d.datasets import open_path
from zeroseg3d.datasets.semantickitti import SemanticKITTI
from zeroseg3d.geometry.config import OcclusionConfig, PairingConfig
from zeroseg3d.geometry.projection import pair_points


def _independent_projection_count(seq_dir, scan):
    calib = {}
    for line in (seq_dir / "calib.txt").read_text().splitlines():
        key, values = line.split(":", 1)
        calib[key] = np.array(values.split(), dtype=np.float64)
    P2 = calib["P2"].reshape(3, 4)
    Tr = np.vstack([calib["Tr"].reshape(3, 4), [0, 0, 0, 1]])
    homog = np.concatenate([scan[:, :3], np.ones((len(scan), 1))], axis=1)
    pix = homog @ (P2 @ Tr).T
    z = pix[:, 2]
    u, v = pix[:, 0] / z, pix[:, 1] / z
    return int(((z > 0) & (u >= -0.5) & (u < 1240.5) & (v >= -0.5) & (v < 375.5)).sum())


def test_frame_000000_points_labels_and_histograms(kitti_root):
    dataset = SemanticKITTI.from_root(kitti_root, sequences=["00"])
    assert dataset.frame_ids == ["00/000000", "00/000001", "00/000002"]
    frame = dataset[0]
    assert frame.num_points == 124668 and frame.points.dtype == np.float32
    raw = np.fromfile(kitti_root / "sequences/00/labels/000000.label", dtype=np.uint32)
    semantic = raw & 0xFFFF
    ids, counts = np.unique(frame.raw_labels, return_counts=True)
    want_ids, want_counts = np.unique(semantic, return_counts=True)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(counts, want_counts)
    np.testing.assert_array_equal(frame.instances, raw >> 16)
    expected = np.array([KITTI_LEARNING_MAP[int(s)] for s in semantic])
    np.testing.assert_array_equal(frame.labels, expected)
    assert np.bincount(expected + 1)[1 + dataset.vocabulary.index("road")] == \
        int(((semantic == 40) | (semantic == 60)).sum())


def test_camera2_projection_count_matches_independent_math(kitti_root):
    dataset = SemanticKITTI.from_root(kitti_root, sequences=["00"])
    for index in range(3):
        frame = dataset[index]
        camera = frame.cameras[0]
        assert camera.image_size == (1241, 376) and camera.image_path is None
        pairing = pair_points(frame.xyz, frame.cameras,
                              PairingConfig(min_depth=1e-6, occlusion=OcclusionConfig(enabled=False)))
        expected = _independent_projection_count(kitti_root / "sequences/00", frame.points)
        assert len(pairing) == expected
        assert 18000 < len(pairing) < 20500


def test_road_lies_below_buildings_in_the_image(kitti_root):
    frame = SemanticKITTI.from_root(kitti_root, sequences=["00"])[0]
    pairing = pair_points(frame.xyz, frame.cameras)
    vocab_labels = frame.labels[pairing.point_idx]
    road_rows = pairing.uv[vocab_labels == 8, 1]
    building_rows = pairing.uv[vocab_labels == 12, 1]
    assert len(road_rows) > 1000 and len(building_rows) > 1000
    assert np.median(road_rows) > np.median(building_rows) + 50
    # the occlusion test removes some points but keeps the large majority
    unoccluded = pair_points(frame.xyz, frame.cameras,
                             PairingConfig(occlusion=OcclusionConfig(enabled=False)))
    assert 0.8 * len(unoccluded) < len(pairing) < len(unoccluded)


def _voxel_overlap(a, b, size=0.2):
    keys_a = {tuple(v) for v in np.floor(a / size).astype(np.int64)}
    keys_b = {tuple(v) for v in np.floor(b / size).astype(np.int64)}
    return len(keys_a & keys_b) / len(keys_a)


def test_poses_align_frames_0_and_2(kitti_root):
    dataset = SemanticKITTI.from_root(kitti_root, sequences=["00"])
    first, third = dataset[0], dataset[2]
    relative = np.linalg.inv(first.pose) @ third.pose
    moved = third.xyz @ relative[:3, :3].T + relative[:3, 3]
    before = _voxel_overlap(first.xyz, third.xyz)
    after = _voxel_overlap(first.xyz, moved)
    assert after > before + 0.1, (before, after)
    assert np.linalg.norm(relative[:3, 3]) > 0.5  # the car moved between the frames


def test_open_path_accepts_root_sequence_and_scan(kitti_root):
    assert len(open_path(kitti_root)) == 3
    assert len(open_path(kitti_root / "sequences/00")) == 3
    single = open_path(kitti_root / "sequences/00/velodyne/000001.bin")
    assert single.frame_ids == ["00/000001"] and single[0].num_points == 124605
