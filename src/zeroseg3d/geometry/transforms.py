"""Rigid transforms as 4x4 matrices."""

from __future__ import annotations

import numpy as np


def quaternion_to_matrix(wxyz) -> np.ndarray:
    """(3, 3) rotation of a unit quaternion given as (w, x, y, z), as nuScenes stores it."""
    w, x, y, z = np.asarray(wxyz, dtype=np.float64) / np.linalg.norm(wxyz)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def make_transform(rotation: np.ndarray, translation) -> np.ndarray:
    transform = np.eye(4)
    transform[:3, :3] = rotation
    transform[:3, 3] = np.asarray(translation, dtype=np.float64)
    return transform


def invert_transform(transform: np.ndarray) -> np.ndarray:
    """Inverse of a rigid transform, without a general matrix inverse."""
    rotation_t = transform[:3, :3].T
    return make_transform(rotation_t, -rotation_t @ transform[:3, 3])
