"""Voxelization: integer voxel coordinates, the point -> voxel map and reductions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Voxelization:
    """coords: (V, 3) int32 voxel indices >= 0 (relative to ``origin``).
    point_to_voxel: (N,) int64, the voxel of each point; voxel features go back to points
    as ``voxel_features[point_to_voxel]``. counts: (V,) points per voxel.
    origin: (3,) float64 world position of voxel (0, 0, 0)'s corner."""

    coords: np.ndarray
    point_to_voxel: np.ndarray
    counts: np.ndarray
    origin: np.ndarray
    voxel_size: float

    @property
    def num_voxels(self) -> int:
        return int(self.coords.shape[0])


def voxelize(xyz: np.ndarray, voxel_size: float) -> Voxelization:
    """Voxels of edge ``voxel_size`` metres occupied by (N, 3) points, in the order of their
    (x, y, z) keys."""
    import torch

    if voxel_size <= 0:
        raise ValueError(f"voxel_size must be positive, got {voxel_size}")
    # per column: reductions along the long axis of an (N, 3) array are several times slower
    xyz = np.asarray(xyz)
    columns = [np.asarray(xyz[:, axis], dtype=np.float64) for axis in range(3)]
    origin = np.array([np.floor(c.min() / voxel_size) * voxel_size for c in columns])
    grid = [np.floor((c - o) / voxel_size).astype(np.int64) for c, o in zip(columns, origin)]
    extent = [int(g.max()) + 1 for g in grid]
    keys = (grid[0] * extent[1] + grid[1]) * extent[2] + grid[2]
    if extent[0] * extent[1] * extent[2] < 2 ** 31:
        keys = keys.astype(np.int32)     # sorts 1.5x faster than int64
    # torch's sort-based unique: the same sorted keys, inverse and counts as np.unique, 3x faster
    unique_keys, point_to_voxel, counts = (t.numpy() for t in torch.unique(
        torch.from_numpy(keys), sorted=True, return_inverse=True, return_counts=True))
    unique_keys = unique_keys.astype(np.int64)
    coords = np.stack([unique_keys // (extent[1] * extent[2]),
                       (unique_keys // extent[2]) % extent[1],
                       unique_keys % extent[2]], axis=1).astype(np.int32)
    return Voxelization(coords, point_to_voxel.astype(np.int64), counts, origin, float(voxel_size))
