"""SemanticKITTI reader: sequences/XX/{velodyne,labels,image_2}, calib.txt, poses.txt."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from zeroseg3d.datasets.base import DATASETS, FrameDataset
from zeroseg3d.datasets.frame import Camera, Frame
from zeroseg3d.datasets.io import (
    as_matrix,
    check_image_size_value,
    check_intrinsics,
    check_rigid,
    check_image_size,
    read_image_size,
    read_kitti_bin,
    read_key_value_file,
    read_label_file,
    split_kitti_label,
)
from zeroseg3d.datasets.vocabulary import Vocabulary, build_vocabulary
from zeroseg3d.errors import DataError

SPLITS = {
    "train": ["00", "01", "02", "03", "04", "05", "06", "07", "09", "10"],
    "val": ["08"],
    "test": [f"{i:02d}" for i in range(11, 22)],
}
SPLITS["trainval"] = sorted(SPLITS["train"] + SPLITS["val"])
# Camera 2's image size in most odometry sequences; calib.txt may state its own with
# 'S2: width height' (the synthetic world does), and a config can override it.
DEFAULT_IMAGE_SIZE = (1241, 376)


class SemanticKITTISequence:
    """One sequence folder. Scans without labels or images load with those left out."""

    def __init__(self, folder: str | Path, vocabulary: Vocabulary,
                 image_size: Sequence[int] | None = None):
        self.folder = Path(folder)
        self.name = self.folder.name
        self.vocabulary = vocabulary
        velodyne = self.folder / "velodyne"
        if not velodyne.is_dir():
            raise DataError(self.folder, "not a SemanticKITTI sequence (no velodyne/ folder)")
        self.scan_paths = sorted(velodyne.glob("*.bin"))
        if not self.scan_paths:
            raise DataError(velodyne, "no .bin scans")
        self.calib_path = self.folder / "calib.txt"
        calib = read_key_value_file(self.calib_path)
        for key in ("P2", "Tr"):
            if key not in calib:
                raise DataError(self.calib_path,
                                f"missing calibration key {key!r} (found {sorted(calib)})")
        P2 = as_matrix(calib["P2"], self.calib_path, "P2", shapes=((3, 4),))
        self.Tr = check_rigid(as_matrix(calib["Tr"], self.calib_path, "Tr"), self.calib_path, "Tr")
        # P2 = K [I | t]: camera 2 is a translation of the rectified camera 0 frame.
        self.K = check_intrinsics(P2[:, :3].copy(), self.calib_path, "P2's intrinsic part")
        offset = np.eye(4)
        offset[:3, 3] = np.linalg.solve(self.K, P2[:, 3])
        self.T_cam2_from_lidar = offset @ self.Tr
        if "S2" in calib:
            self.image_size = check_image_size_value(calib["S2"].tolist(), self.calib_path, "S2")
            self._size_source = f"S2 in {self.calib_path}"
        elif image_size is not None:
            self.image_size = check_image_size_value(list(image_size), self.folder, "data.image_size")
            self._size_source = "data.image_size"
        else:
            self.image_size = DEFAULT_IMAGE_SIZE
            self._size_source = None  # the first image decides
        self.image_dir = self.folder / "image_2"
        self.label_dir = self.folder / "labels"
        if self.label_dir.is_dir():   # a partial copy would train its unlabelled scans as annotation-free
            labelled = {p.stem for p in self.label_dir.glob("*.label")}
            missing = [p.name for p in self.scan_paths if p.stem not in labelled]
            if missing:
                warnings.warn(f"{self.label_dir}: no labels for {len(missing)} of {len(self.scan_paths)} scans "
                              f"(first {missing[0]}); they load without labels", stacklevel=3)
        self.poses = self._read_poses(self.folder / "poses.txt")
        if self.poses is not None and len(self.poses) < len(self.scan_paths):   # said now, not at that scan
            raise DataError(self.folder / "poses.txt", f"{len(self.poses)} poses but scan "
                            f"{self.scan_paths[len(self.poses)].name} is frame {len(self.poses)}")

    def _read_poses(self, path: Path) -> np.ndarray | None:
        if not path.is_file():
            return None
        from zeroseg3d.utils.yaml_text import read_text_utf8

        text = read_text_utf8(path, lambda problem: DataError(path, problem))
        rows = [line.split() for line in text.splitlines() if line.strip()]
        wrong = next((number for number, row in enumerate(rows, start=1) if len(row) != 12), None)
        if wrong is not None:
            raise DataError(path, f"pose {wrong} holds {len(rows[wrong - 1])} values: every line must hold "
                                  "12 numbers (a 3x4 pose)")
        try:
            flat = np.array(rows, dtype=np.float64).reshape(-1, 12)
        except ValueError:
            raise DataError(path, "every line must hold 12 numbers (a 3x4 pose)") from None
        poses = np.tile(np.eye(4), (len(flat), 1, 1))
        poses[:, :3, :] = flat.reshape(-1, 3, 4)
        for number, pose in enumerate(poses, start=1):
            check_rigid(pose, path, f"pose {number}")
        # poses.txt is in camera-0 coordinates; conjugate by Tr for LiDAR poses.
        return np.linalg.inv(self.Tr) @ poses @ self.Tr

    def __len__(self) -> int:
        return len(self.scan_paths)

    def frame_id(self, index: int) -> str:
        return f"{self.name}/{self.scan_paths[index].stem}"

    def camera(self, index: int) -> Camera:
        stem = self.scan_paths[index].stem
        image_path = None
        if self.image_dir.is_dir():
            image_path = self.image_dir / f"{stem}.png"
            size = read_image_size(image_path)  # raises 'missing image' when absent
            if self._size_source is None:
                self.image_size, self._size_source = size, f"first image {image_path}"
            check_image_size(image_path, size, self.image_size)
        return Camera("image_2", self.K.copy(), self.T_cam2_from_lidar.copy(),
                      tuple(self.image_size), image_path)

    def load(self, index: int) -> Frame:
        scan_path = self.scan_paths[index]
        points = read_kitti_bin(scan_path)
        labels = raw = instances = None
        label_path = self.label_dir / f"{scan_path.stem}.label"
        if label_path.exists() and not label_path.is_file():
            raise DataError(label_path, "not a file")
        if label_path.is_file():
            raw, instances = split_kitti_label(read_label_file(label_path, len(points)))
            labels = self.vocabulary.map_raw(raw, label_path)
        pose = None if self.poses is None else self.poses[index]
        return Frame(frame_id=self.frame_id(index), points=points, cameras=[self.camera(index)],
                     labels=labels, raw_labels=raw, instances=instances, pose=pose,
                     source=scan_path)


@DATASETS.register("semantickitti")
class SemanticKITTI(FrameDataset):
    """Frames of one or more SemanticKITTI sequence folders, in order."""

    def __init__(self, sequence_folders: Sequence[str | Path],
                 vocabulary: Vocabulary | str = "semantickitti",
                 image_size: Sequence[int] | None = None):
        self.vocabulary = (vocabulary if isinstance(vocabulary, Vocabulary)
                           else Vocabulary.load(vocabulary))
        self.sequences = [SemanticKITTISequence(f, self.vocabulary, image_size)
                          for f in sequence_folders]
        self._index = [(s, i) for s in self.sequences for i in range(len(s))]
        self._frame_ids = [s.frame_id(i) for s, i in self._index]

    @classmethod
    def from_root(cls, root: str | Path, split: str = "train",
                  sequences: Sequence[str] | None = None,
                  vocabulary: Vocabulary | str = "semantickitti",
                  image_size: Sequence[int] | None = None) -> "SemanticKITTI":
        """A dataset root holding sequences/, read for a named split or a sequence list."""
        base = Path(root) / "sequences"
        if not base.is_dir():
            raise DataError(root, "not a SemanticKITTI root (no sequences/ folder)")
        if sequences is not None:
            names = [str(s).zfill(2) if str(s).isdigit() else str(s) for s in sequences]
            missing = [n for n in names if not (base / n).is_dir()]
            if missing:
                raise DataError(base, f"sequences not found: {missing}")
        else:
            if split not in SPLITS and split != "all":
                raise DataError(None, f"unknown SemanticKITTI split {split!r}; "
                                f"known: {', '.join(SPLITS)}, all")
            on_disk = sorted(p.name for p in base.iterdir() if (p / "velodyne").is_dir())
            wanted = on_disk if split == "all" else SPLITS[split]
            names = [n for n in wanted if n in on_disk]
            if not names:
                raise DataError(base, f"none of the {split!r} sequences {wanted} is present")
            if len(names) < len(wanted):
                warnings.warn(f"{base}: split {split!r} is partial; reading sequences {names}",
                              stacklevel=2)
        return cls([base / n for n in names], vocabulary, image_size)

    @classmethod
    def from_config(cls, data_config, split: str) -> "SemanticKITTI":
        # data.sequences replaces the configured split, data.val_sequences the val split
        if split == data_config.split:
            sequences = data_config.sequences
        elif split == "val":
            sequences = data_config.val_sequences
        else:
            sequences = None
        return cls.from_root(data_config.root, split, sequences,
                             build_vocabulary(data_config), data_config.image_size)

    @property
    def frame_ids(self) -> list[str]:
        return self._frame_ids

    @property
    def prediction_names(self) -> list[str]:
        """sequences/XX/predictions/NNNNNN: semantic-kitti-api's layout (its
        evaluate_semantics.py --predictions takes the output folder)."""
        return [f"sequences/{s.name}/predictions/{s.scan_paths[i].stem}" for s, i in self._index]

    def load(self, index: int) -> Frame:
        sequence, local = self._index[index]
        return sequence.load(local)
