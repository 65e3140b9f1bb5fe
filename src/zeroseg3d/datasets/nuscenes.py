"""nuScenes reader through nuscenes-devkit: keyframe LIDAR_TOP, lidarseg labels, 6 cameras."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zeroseg3d.datasets.base import DATASETS, FrameDataset
from zeroseg3d.datasets.frame import Camera, Frame
from zeroseg3d.datasets.io import (
    check_image_size,
    read_image_size,
    read_label_file,
    read_nuscenes_bin,
)
from zeroseg3d.datasets.vocabulary import Vocabulary, build_vocabulary
from zeroseg3d.errors import DataError
from zeroseg3d.geometry.transforms import invert_transform, make_transform, quaternion_to_matrix

CAMERA_CHANNELS = ("CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_BACK_RIGHT", "CAM_BACK",
                   "CAM_BACK_LEFT", "CAM_FRONT_LEFT")


def _pose(record: dict) -> np.ndarray:
    """calibrated_sensor or ego_pose record -> (4, 4) sensor->ego or ego->global."""
    return make_transform(quaternion_to_matrix(record["rotation"]), record["translation"])


@DATASETS.register("nuscenes")
class NuScenesLidarSeg(FrameDataset):
    """Keyframes of the scenes in a devkit split ('mini_train', 'mini_val', 'train', 'val',
    'test') or 'all'. Frame ids are sample tokens."""

    def __init__(self, root: str | Path, version: str = "v1.0-trainval", split: str = "train",
                 vocabulary: Vocabulary | str = "nuscenes"):
        self.root = Path(root)
        self.vocabulary = (vocabulary if isinstance(vocabulary, Vocabulary)
                           else Vocabulary.load(vocabulary))
        if not (self.root / version).is_dir():
            raise DataError(self.root / version,
                            f"nuScenes tables for version {version!r} not found")
        try:
            from nuscenes.nuscenes import NuScenes
            from nuscenes.utils.splits import create_splits_scenes
        except ImportError as exc:
            raise DataError(None, f"reading nuScenes needs nuscenes-devkit ({exc})") from None
        self.nusc = NuScenes(version=version, dataroot=str(self.root), verbose=False)
        if split == "all":
            scene_names = {scene["name"] for scene in self.nusc.scene}
        else:
            splits = create_splits_scenes(verbose=False)
            if split not in splits:
                raise DataError(None, f"unknown nuScenes split {split!r}; "
                                f"known: {', '.join(sorted(splits))}, all")
            scene_names = set(splits[split])
        self._tokens: list[str] = []
        self._scenes: list[str] = []
        for scene in self.nusc.scene:
            if scene["name"] not in scene_names:
                continue
            token = scene["first_sample_token"]
            while token:
                self._tokens.append(token)
                self._scenes.append(scene["name"])
                token = self.nusc.get("sample", token)["next"]
        if not self._tokens:
            raise DataError(self.root, f"no samples of split {split!r} in version {version!r}")
        self.has_lidarseg = hasattr(self.nusc, "lidarseg")

    @classmethod
    def from_config(cls, data_config, split: str) -> "NuScenesLidarSeg":
        return cls(data_config.root, data_config.version, split, build_vocabulary(data_config))

    @property
    def frame_ids(self) -> list[str]:
        return self._tokens

    @property
    def frame_sequences(self) -> list[str]:
        return self._scenes

    def _camera(self, channel: str, token: str, T_global_from_lidar: np.ndarray) -> Camera:
        record = self.nusc.get("sample_data", token)
        calib = self.nusc.get("calibrated_sensor", record["calibrated_sensor_token"])
        # lidar -> ego(lidar time) -> global -> ego(camera time) -> camera
        T_global_from_cam = _pose(self.nusc.get("ego_pose", record["ego_pose_token"])) @ _pose(calib)
        T_cam_from_lidar = invert_transform(T_global_from_cam) @ T_global_from_lidar
        size = (int(record["width"]), int(record["height"]))
        image_path = self.root / record["filename"]
        if image_path.parent.is_dir():
            check_image_size(image_path, read_image_size(image_path), size)
        else:
            image_path = None  # a lidar-only download: the camera is known, its image is not
        K = np.asarray(calib["camera_intrinsic"], dtype=np.float64)
        if K.shape != (3, 3):
            raise DataError(self.root / self.nusc.version / "calibrated_sensor.json",
                            f"{channel} camera_intrinsic must be 3x3, got {K.shape}")
        return Camera(channel, K, T_cam_from_lidar, size, image_path)

    def load(self, index: int) -> Frame:
        sample = self.nusc.get("sample", self._tokens[index])
        lidar_token = sample["data"]["LIDAR_TOP"]
        lidar = self.nusc.get("sample_data", lidar_token)
        scan_path = self.root / lidar["filename"]
        points = read_nuscenes_bin(scan_path)
        calib = self.nusc.get("calibrated_sensor", lidar["calibrated_sensor_token"])
        T_global_from_lidar = _pose(self.nusc.get("ego_pose", lidar["ego_pose_token"])) @ _pose(calib)
        cameras = [self._camera(ch, sample["data"][ch], T_global_from_lidar)
                   for ch in CAMERA_CHANNELS if ch in sample["data"]]
        raw = labels = None
        if self.has_lidarseg:
            label_path = self.root / self.nusc.get("lidarseg", lidar_token)["filename"]
            raw = read_label_file(label_path, len(points), dtype=np.uint8).astype(np.uint32)
            labels = self.vocabulary.map_raw(raw, label_path)
        return Frame(frame_id=sample["token"], points=points, cameras=cameras, labels=labels,
                     raw_labels=raw, pose=T_global_from_lidar, source=scan_path)
