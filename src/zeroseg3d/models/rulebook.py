"""Rulebooks of the student's two CPU convolution shapes, built in torch, in spconv's layout.

A rulebook lists, per kernel offset, the (input row, output row) pairs a sparse convolution
sums over. spconv builds them on the CPU with a hash table on one thread (45 ms for the 91,767
voxels of a KITTI scan at 0.05 m); the sorted-key searches here take half of that
(benchmarks/bench_rulebook.py, docs/results.md) and give spconv's layout, so spconv's kernels
and its backward use them unchanged:

- ``pairs`` (2, offsets, N) int32: row 0 the input rows, row 1 the output rows, -1 after each
  offset's count; ``counts`` (offsets,) int32.
- a 3x3x3 submanifold convolution (output voxels = input voxels) stores the offsets before the
  centre (counts after it are 0), each mirrored offset's slot holds the same pairs reversed, and
  the centre's slot holds every row once. Offset k = (dx+1)*9 + (dy+1)*3 + (dz+1), where the
  input voxel is the output voxel + (dx, dy, dz).
- a kernel-2 stride-2 convolution: each input voxel feeds one output voxel (its cell at half
  resolution) through offset (x%2)*4 + (y%2)*2 + z%2; like spconv, input voxels beyond the last
  full cell of an odd-sized grid are dropped.
"""

from __future__ import annotations

import torch


def _keys(coords: torch.Tensor, shape: list[int], margin: int) -> torch.Tensor:
    """int64 keys of (batch, x, y, z) rows, row-major over ``shape`` grown by ``margin`` cells
    on each side, so that a neighbour's key is the key plus a constant."""
    c = coords.long()
    x, y, z = (int(s) + 2 * margin for s in shape)
    return ((c[:, 0] * x + c[:, 1] + margin) * y + c[:, 2] + margin) * z + c[:, 3] + margin


def submanifold_pairs(coords: torch.Tensor, spatial_shape: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(pairs (2, 27, N) int32, counts (27,) int32) of a 3x3x3 submanifold convolution over the
    voxels ``coords`` (N, 4) (batch, x, y, z) on a grid of ``spatial_shape``."""
    n = len(coords)
    pairs = torch.full((2, 27, n), -1, dtype=torch.int32)
    counts = torch.zeros(27, dtype=torch.int32)
    if n == 0:
        return pairs, counts
    _, ny, nz = (int(s) + 2 for s in spatial_shape)
    keys = _keys(coords, spatial_shape, 1)
    # voxelization emits sorted coordinates: skip the sort then
    order = None if bool((keys[1:] > keys[:-1]).all()) else torch.argsort(keys)
    sorted_keys = keys if order is None else keys[order]
    # two sentinels past the end: positions p + 1 never need clamping
    padded = torch.cat([sorted_keys, sorted_keys.new_full((2,), torch.iinfo(torch.int64).max)])

    def put(k: int, hit: torch.Tensor, position: torch.Tensor) -> None:
        out = hit.nonzero().squeeze(1)
        inp = position[out]
        if order is not None:
            out, inp = order[out], order[inp]
        m = len(out)
        counts[k] = m
        pairs[0, k, :m], pairs[1, k, :m] = inp, out
        pairs[0, 26 - k, :m], pairs[1, 26 - k, :m] = out, inp

    # one search per neighbouring column (dx, dy): its z - 1, z, z + 1 voxels sit next to
    # where the key of z would go
    for dx, dy in ((-1, -1), (-1, 0), (-1, 1), (0, -1)):
        query = sorted_keys + (dx * ny + dy) * nz
        at = torch.searchsorted(sorted_keys, query)
        same = padded[at] == query
        before = (at - 1).clamp_min(0)
        after = at + same.long()
        first = ((dx + 1) * 3 + dy + 1) * 3
        put(first, (padded[before] == query - 1) & (at > 0), before)
        put(first + 1, same, at)
        put(first + 2, padded[after] == query + 1, after)
    # (0, 0, -1): the previous key in sorted order
    previous = torch.cat([sorted_keys.new_zeros(1, dtype=torch.bool), sorted_keys[1:] == sorted_keys[:-1] + 1])
    put(12, previous, (torch.arange(n) - 1).clamp_min(0))
    rows = torch.arange(n, dtype=torch.int32)
    pairs[0, 13], pairs[1, 13] = rows, rows
    return pairs, counts


def downsample_shape(spatial_shape: list[int]) -> list[int]:
    """The grid of a kernel-2 stride-2 convolution without padding (spconv's arithmetic)."""
    return [(int(s) - 2) // 2 + 1 for s in spatial_shape]


def downsample_pairs(coords: torch.Tensor, spatial_shape: list[int]
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """(output coords (M, 4) int32 in key order, pairs (2, 8, N) int32, counts (8,) int32,
    output grid) of a kernel-2 stride-2 convolution over ``coords`` (N, 4)."""
    n = len(coords)
    shape = downsample_shape(spatial_shape)
    c = coords.long()
    half = torch.cat([c[:, :1], c[:, 1:] // 2], 1)
    inside = (half[:, 1:] < torch.tensor(shape)).all(1)
    rows = None if bool(inside.all()) else inside.nonzero().squeeze(1)
    if rows is not None:
        c, half = c[rows], half[rows]
    keys = _keys(half, shape, 0)
    unique, target = torch.unique(keys, return_inverse=True)
    nx, ny, nz = shape
    out = torch.stack([unique // (nx * ny * nz), unique // (ny * nz) % nx, unique // nz % ny, unique % nz], 1).int()
    offset = (c[:, 1] % 2) * 4 + (c[:, 2] % 2) * 2 + c[:, 3] % 2
    by_offset = torch.argsort(offset, stable=True)
    counts = torch.bincount(offset, minlength=8).int()
    pairs = torch.full((2, 8, n), -1, dtype=torch.int32)
    start = 0
    for k, m in enumerate(counts.tolist()):
        chunk = by_offset[start:start + m]
        start += m
        pairs[0, k, :m] = chunk if rows is None else rows[chunk]
        pairs[1, k, :m] = target[chunk]
    return out, pairs, counts, shape
