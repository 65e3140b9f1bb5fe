"""The one structure every reader produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Camera:
    """A pinhole camera paired with the scan.

    K: (3, 3) intrinsics. T_cam_from_lidar: (4, 4) rigid transform taking LiDAR coordinates to
    camera coordinates (x right, y down, z forward). image_size: (width, height) in pixels,
    known even when the image itself is not. The image is read lazily by :meth:`load_image`.
    """

    name: str
    K: np.ndarray
    T_cam_from_lidar: np.ndarray
    image_size: tuple[int, int]
    image_path: Path | None = None
    image: np.ndarray | None = field(default=None, repr=False)

    def load_image(self) -> np.ndarray | None:
        """(H, W, 3) uint8 RGB, or None when the camera has no image file."""
        if self.image is None and self.image_path is not None:
            from zeroseg3d.datasets.io import read_image

            self.image = read_image(self.image_path, expected_size=self.image_size)
        return self.image


@dataclass
class Frame:
    """One LiDAR scan with what belongs to it.

    points: (N, 4) float32 x, y, z, intensity in the LiDAR frame.
    labels: (N,) int64 train ids of the vocabulary, IGNORE_INDEX (-1) for ignored points.
    raw_labels: (N,) uint32 semantic ids as stored in the dataset, before the learning map.
    instances: (N,) uint32 instance ids, where the dataset has them.
    pose: (4, 4) LiDAR -> world transform, where the dataset has poses.
    origin: (3,) float64 subtracted from a georeferenced file's coordinates (points + origin are
    the file's own; datasets.io.local_metres), None where nothing was.
    """

    frame_id: str
    points: np.ndarray
    cameras: list[Camera] = field(default_factory=list)
    labels: np.ndarray | None = None
    raw_labels: np.ndarray | None = None
    instances: np.ndarray | None = None
    pose: np.ndarray | None = None
    source: Path | None = None
    origin: np.ndarray | None = None

    @property
    def num_points(self) -> int:
        return int(self.points.shape[0])

    @property
    def xyz(self) -> np.ndarray:
        return self.points[:, :3]
