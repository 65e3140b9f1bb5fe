"""Voxelization: integer voxel coordinates, the point -> voxel map and reductions.

One implementation in torch, on whatever device the points are: ``voxelize`` for one scan as
numpy arrays (prediction, evaluation), ``voxelize_batch`` for a batch of scans where they
are (the training step voxelizes its batch on its own device; the loader's workers then only
read and augment)."""

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

    points = torch.from_numpy(np.asarray(xyz))
    coords, point_to_voxel, counts, origin = _voxelize(points, torch.tensor([0, len(points)]), voxel_size)
    return Voxelization(coords[:, 1:].numpy(), point_to_voxel.numpy(), counts.numpy(), origin[0].numpy(),
                        float(voxel_size))


def voxelize_batch(xyz, offsets, voxel_size: float):
    """(coords (V, 4) int32 as (scan, x, y, z), point_to_voxel (N,) int64) of the scans whose
    points ``xyz`` (N, 3) ``offsets`` (B + 1,) delimit, on their device: each scan voxelized
    as ``voxelize`` does, the scans' voxels one after another (what collating the scans'
    own voxelizations gives)."""
    coords, point_to_voxel, _, _ = _voxelize(xyz, offsets, voxel_size)
    return coords, point_to_voxel


def _voxelize(xyz, offsets, voxel_size: float):
    import torch

    if voxel_size <= 0:
        raise ValueError(f"voxel_size must be positive, got {voxel_size}")
    device = xyz.device
    bounds = offsets.tolist()
    scans = len(bounds) - 1
    spans = [(start, stop) for start, stop in zip(bounds[:-1], bounds[1:])]
    scan = torch.repeat_interleave(torch.arange(scans, device=device), torch.diff(offsets.to(device)),
                                   output_size=len(xyz))
    cells = torch.empty(len(xyz), 4, dtype=torch.int32, device=device)   # (scan, x, y, z) per point
    cells[:, 0] = scan
    keys, count = scan, scans
    origin = torch.zeros(scans, 3, dtype=torch.float64, device=device)
    for axis in range(3):
        # float64: a scan's origin is its lowest corner on the grid, a point's cell its floored
        # offset from there (tensors throughout: no wait for the device per scan)
        column = xyz[:, axis].to(torch.float64, copy=True)   # floored in place below
        for index, (start, stop) in enumerate(spans):
            if stop > start:
                part = column[start:stop]
                origin[index, axis] = torch.floor(part.min() / voxel_size) * voxel_size
                torch.floor((part - origin[index, axis]) / voxel_size, out=part)
        cell = column.long()
        cells[:, axis + 1] = cell
        extent = int(cell.max()) + 1 if len(xyz) else 1
        keys, count = keys * extent + cell, count * extent
    if count < 2 ** 31:
        keys = keys.int()     # sorts 1.5x faster than int64 on the CPU
    unique_keys, point_to_voxel, counts = torch.unique(keys, sorted=True, return_inverse=True, return_counts=True)
    # a voxel's coordinates are any of its points' (cheaper than dividing the keys)
    member = torch.empty(len(unique_keys), dtype=torch.int64, device=device)
    member.scatter_(0, point_to_voxel, torch.arange(len(xyz), device=device))
    # rows of four int32 gathered as two int64: torch's row gather is faster with fewer columns
    coords = cells.view(torch.int64).index_select(0, member).view(torch.int32)
    return coords, point_to_voxel.long(), counts, origin.cpu()
