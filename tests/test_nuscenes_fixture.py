"""A tiny nuScenes-format dataset written here, read through nuscenes-devkit."""

import json

import numpy as np
import pytest

pytest.importorskip("nuscenes")
from pyquaternion import Quaternion  # noqa: E402  (a nuscenes-devkit dependency)

from zeroseg3d.datasets.nuscenes import NuScenesLidarSeg  # noqa: E402
from zeroseg3d.datasets.vocabulary import Vocabulary  # noqa: E402
from zeroseg3d.errors import DataError  # noqa: E402
from zeroseg3d.geometry.config import OcclusionConfig, PairingConfig  # noqa: E402
from zeroseg3d.geometry.projection import pair_points  # noqa: E402

VERSION = "v1.0-mini"
FOCAL, WIDTH, HEIGHT = 50.0, 160, 90
K = [[FOCAL, 0.0, 80.0], [0.0, FOCAL, 45.0], [0.0, 0.0, 1.0]]
# camera axes (x right, y down, z forward) expressed in the ego frame (x forward, y left, z up)
R_EGO_FROM_FRONT = np.array([[0.0, 0, 1], [-1, 0, 0], [0, -1, 0]])
R_EGO_FROM_BACK = np.array([[0.0, 0, -1], [1, 0, 0], [0, -1, 0]])
R_EGO_FROM_LIDAR = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])  # 90 degrees about z

# lidar frame points (x, y, z, intensity 0-255, ring); the first is straight ahead of CAM_FRONT
# (see test), the second 1 m right of it
POINTS = np.array([
    [0.0, -11.5, -0.3, 51, 0],
    [-1.0, -11.5, -0.3, 153, 1],
    [0.0, 12.0, -0.3, 255, 2],   # behind the car: seen by CAM_BACK
    [30.0, 0.0, -0.3, 0, 3],   # to the left: seen by neither camera
], dtype=np.float32)
RAW_LABELS = np.array([17, 24, 9, 31], dtype=np.uint8)


def _quat(rotation):
    return list(Quaternion(matrix=rotation).elements)


def write_fixture(root):
    from PIL import Image

    table = root / VERSION
    table.mkdir(parents=True)
    names = Vocabulary.load("nuscenes").raw_names  # the devkit's 32 lidarseg category names
    tables = {
        "category": [{"token": f"cat{i}", "name": names[i], "description": "", "index": i}
                     for i in range(32)],
        "attribute": [], "visibility": [], "instance": [], "sample_annotation": [],
        "sensor": [{"token": "s_lidar", "channel": "LIDAR_TOP", "modality": "lidar"},
                   {"token": "s_front", "channel": "CAM_FRONT", "modality": "camera"},
                   {"token": "s_back", "channel": "CAM_BACK", "modality": "camera"}],
        "calibrated_sensor": [
            {"token": "cs_lidar", "sensor_token": "s_lidar", "translation": [0.0, 0.0, 1.8],
             "rotation": _quat(R_EGO_FROM_LIDAR), "camera_intrinsic": []},
            {"token": "cs_front", "sensor_token": "s_front", "translation": [1.5, 0.0, 1.5],
             "rotation": _quat(R_EGO_FROM_FRONT), "camera_intrinsic": K},
            {"token": "cs_back", "sensor_token": "s_back", "translation": [-1.0, 0.0, 1.5],
             "rotation": _quat(R_EGO_FROM_BACK), "camera_intrinsic": K},
        ],
        "ego_pose": [
            # the car drives 1 m along global x between the lidar and the camera timestamps
            {"token": "ep_lidar", "translation": [100.0, 200.0, 0.0], "rotation": [1.0, 0, 0, 0], "timestamp": 0},
            {"token": "ep_cam", "translation": [101.0, 200.0, 0.0], "rotation": [1.0, 0, 0, 0], "timestamp": 1},
        ],
        "log": [{"token": "log0", "logfile": "", "vehicle": "", "date_captured": "", "location": "x"}],
        "map": [{"token": "map0", "log_tokens": ["log0"], "category": "semantic_prior",
                 "filename": "maps/map0.png"}],
        "scene": [{"token": "scene0", "log_token": "log0", "nbr_samples": 2, "name": "scene-0061",
                   "description": "", "first_sample_token": "sample0", "last_sample_token": "sample1"}],
        "sample": [{"token": "sample0", "timestamp": 0, "prev": "", "next": "sample1", "scene_token": "scene0"},
                   {"token": "sample1", "timestamp": 5, "prev": "sample0", "next": "", "scene_token": "scene0"}],
        "sample_data": [],
    }
    lidarseg = []
    (root / "maps").mkdir()
    (root / "maps/map0.png").write_bytes(b"")
    for s in range(2):
        for channel, cs, ep, ext in (("LIDAR_TOP", "cs_lidar", "ep_lidar", "pcd.bin"),
                                     ("CAM_FRONT", "cs_front", "ep_cam", "jpg"),
                                     ("CAM_BACK", "cs_back", "ep_cam", "jpg")):
            filename = f"samples/{channel}/s{s}_{channel}.{ext}"
            (root / filename).parent.mkdir(parents=True, exist_ok=True)
            token = f"sd_{channel}_{s}"
            tables["sample_data"].append({
                "token": token, "sample_token": f"sample{s}", "ego_pose_token": ep,
                "calibrated_sensor_token": cs, "timestamp": s, "fileformat": ext,
                "is_key_frame": True, "height": 0 if channel == "LIDAR_TOP" else HEIGHT,
                "width": 0 if channel == "LIDAR_TOP" else WIDTH, "filename": filename,
                "prev": "", "next": ""})
            if channel == "LIDAR_TOP":
                POINTS.tofile(root / filename)
                label_file = f"lidarseg/{VERSION}/{token}_lidarseg.bin"
                (root / label_file).parent.mkdir(parents=True, exist_ok=True)
                RAW_LABELS.tofile(root / label_file)
                lidarseg.append({"token": token, "sample_data_token": token, "filename": label_file})
            else:
                Image.fromarray(np.full((HEIGHT, WIDTH, 3), 90, np.uint8)).save(root / filename)
    for name, rows in tables.items():
        (table / f"{name}.json").write_text(json.dumps(rows))
    (table / "lidarseg.json").write_text(json.dumps(lidarseg))
    return root


@pytest.fixture
def nuscenes_root(tmp_path):
    return write_fixture(tmp_path / "nuscenes")


def test_reads_keyframes_labels_and_cameras(nuscenes_root):
    dataset = NuScenesLidarSeg(nuscenes_root, VERSION, "mini_train")
    assert dataset.frame_ids == ["sample0", "sample1"]
    frame = dataset[0]
    np.testing.assert_array_equal(frame.points[:, :3], POINTS[:, :3])
    np.testing.assert_allclose(frame.points[:, 3], [0.2, 0.6, 1.0, 0.0], rtol=1e-6)   # intensity / 255
    assert [dataset.vocabulary.names[i] if i >= 0 else None for i in frame.labels] == [
        "car", "driveable_surface", "barrier", None]
    assert [c.name for c in frame.cameras] == ["CAM_FRONT", "CAM_BACK"]
    assert frame.cameras[0].image_size == (WIDTH, HEIGHT)
    assert frame.cameras[0].load_image().shape == (HEIGHT, WIDTH, 3)
    with pytest.raises(DataError, match="no samples of split 'mini_val'"):
        NuScenesLidarSeg(nuscenes_root, VERSION, "mini_val")


def test_projection_through_the_full_chain(nuscenes_root):
    frame = NuScenesLidarSeg(nuscenes_root, VERSION, "mini_train")[0]
    # Hand-computed: point 0 -> ego(lidar time) (11.5, 0, 1.5) -> global (111.5, 200, 1.5)
    # -> ego(camera time) (10.5, 0, 1.5) -> CAM_FRONT (0, 0, 9): the principal point, depth 9.
    # Point 1 is 1 m to the right: u = 80 + 50 / 9. Ignoring the ego motion would give depth 10.
    pairing = pair_points(frame.xyz, frame.cameras,
                          PairingConfig(occlusion=OcclusionConfig(enabled=False)))
    front = pairing.select(pairing.cam_idx == 0)
    assert front.point_idx.tolist() == [0, 1]
    np.testing.assert_allclose(front.depth, [9.0, 9.0], atol=1e-5)
    np.testing.assert_allclose(front.uv, [[80.0, 45.0], [80.0 + 50.0 / 9.0, 45.0]], atol=1e-4)
    # Point 2: ego (-12, 0, 1.5) -> global (88, 200, 1.5) -> ego(cam) (-13, 0, 1.5) -> CAM_BACK (0, 0, 12)
    back = pairing.select(pairing.cam_idx == 1)
    assert back.point_idx.tolist() == [2]
    np.testing.assert_allclose(back.depth, [12.0], atol=1e-5)
    np.testing.assert_allclose(back.uv, [[80.0, 45.0]], atol=1e-4)
    # the lidar pose places point 0 at its global position
    np.testing.assert_allclose(frame.pose[:3, :3] @ frame.xyz[0] + frame.pose[:3, 3], [111.5, 200.0, 1.5], atol=1e-5)


def test_image_of_wrong_size_is_refused(nuscenes_root):
    from PIL import Image

    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(nuscenes_root / "samples/CAM_BACK/s1_CAM_BACK.jpg")
    dataset = NuScenesLidarSeg(nuscenes_root, VERSION, "mini_train")
    with pytest.raises(DataError, match=r"s1_CAM_BACK\.jpg: image of unexpected size 10x10, expected 160x90"):
        dataset[1]


def test_label_count_mismatch(nuscenes_root):
    np.zeros(3, np.uint8).tofile(nuscenes_root / f"lidarseg/{VERSION}/sd_LIDAR_TOP_1_lidarseg.bin")
    with pytest.raises(DataError, match="label/point count mismatch: 3 labels for 4 points"):
        NuScenesLidarSeg(nuscenes_root, VERSION, "mini_train")[1]


def test_the_command_line_opens_a_devkit_root_by_path(nuscenes_root, capsys):
    from zeroseg3d.cli import main
    from zeroseg3d.datasets import open_path

    dataset = open_path(nuscenes_root)
    assert len(dataset) >= 1 and dataset.vocabulary.name == "nuscenes"
    assert [c.name for c in dataset[0].cameras] == ["CAM_FRONT", "CAM_BACK"]   # the fixture's two
    assert main(["data", "inspect", str(nuscenes_root)]) == 0
    assert "nuscenes" in capsys.readouterr().out.lower()


def test_the_dataset_pickles_into_a_fresh_process(nuscenes_root, tmp_path):
    """Data-loader workers started by spawn unpickle the dataset with its checked devkit tables
    in a process that has not read nuScenes yet."""
    import pickle
    import subprocess
    import sys

    path = tmp_path / "dataset.pkl"
    path.write_bytes(pickle.dumps(NuScenesLidarSeg(nuscenes_root, VERSION, "mini_train")))
    out = subprocess.run([sys.executable, "-c", "import pickle, sys; d = pickle.loads(open(sys.argv[1], 'rb').read()); "
                          "print(type(d.nusc).__name__, d[1].num_points, d.frame_ids)", str(path)],
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["CheckedNuScenes", "4", "['sample0',", "'sample1']"]
