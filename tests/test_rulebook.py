"""models/rulebook.py against spconv's own rulebooks: the same pairs per kernel offset, and
spconv's exact layout for sorted voxels, so its kernels and backward run on them unchanged."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zeroseg3d.models.rulebook import downsample_pairs, downsample_shape, submanifold_pairs

spconv = pytest.importorskip("spconv.pytorch")


def _spconv_pairs(coords, shape, batch_size, subm):
    from spconv.core import ConvAlgo
    from spconv.pytorch import ops

    from zeroseg3d.models.spconv_compat import import_spconv

    import_spconv()
    k, s = ([3] * 3, [1] * 3) if subm else ([2] * 3, [2] * 3)
    return ops.get_indice_pairs(coords, batch_size, shape, ConvAlgo.Native, k, s, [1 if subm else 0] * 3, [1] * 3,
                                [0] * 3, subm, False)


def _offset_pairs(coords_in, coords_out, pairs, counts, k):
    n = int(counts[k])
    return {(tuple(coords_in[i].tolist()), tuple(coords_out[o].tolist()))
            for i, o in zip(pairs[0, k, :n].tolist(), pairs[1, k, :n].tolist())}


voxel_sets = st.builds(
    lambda batch, size, seed, count, shuffle: (batch, size, seed, count, shuffle),
    st.integers(1, 3), st.integers(2, 9), st.integers(0, 10_000), st.integers(1, 400), st.booleans())


def _coords(batch, size, seed, count, shuffle):
    g = torch.Generator().manual_seed(seed)
    c = torch.cat([torch.randint(0, batch, (count, 1), generator=g), torch.randint(0, size, (count, 3), generator=g)], 1)
    c = torch.unique(c, dim=0)
    if shuffle:
        c = c[torch.randperm(len(c), generator=g)]
    return c.int(), [size + 1, size, size + 2]


@settings(max_examples=40, deadline=None)
@given(voxel_sets)
def test_submanifold_pairs_are_spconvs(case):
    coords, shape = _coords(*case)
    _, expected, expected_counts = _spconv_pairs(coords, shape, case[0], subm=True)
    pairs, counts = submanifold_pairs(coords, shape)
    assert counts.tolist() == expected_counts.tolist()
    for k in range(13):
        assert _offset_pairs(coords, coords, pairs, counts, k) == _offset_pairs(coords, coords, expected, expected_counts, k)
        n = int(counts[k])   # the mirrored slot: the same pairs reversed
        assert torch.equal(pairs[:, 26 - k, :n], pairs[:, k, :n].flip(0))
    assert torch.equal(pairs[:, 13], torch.arange(len(coords)).int().expand(2, -1))
    if not case[4]:   # sorted voxels, as voxelization gives them: spconv's layout to the element
        assert torch.equal(pairs, expected)


@settings(max_examples=40, deadline=None)
@given(voxel_sets)
def test_downsample_pairs_are_spconvs(case):
    coords, shape = _coords(*case)
    expected_out, expected, expected_counts = _spconv_pairs(coords, shape, case[0], subm=False)
    out, pairs, counts, out_shape = downsample_pairs(coords, shape)
    from spconv.pytorch import ops

    assert out_shape == downsample_shape(shape) == ops.get_conv_output_size(shape, [2] * 3, [2] * 3, [0] * 3, [1] * 3)
    assert sorted(map(tuple, out.tolist())) == sorted(map(tuple, expected_out.tolist()))
    assert counts.tolist() == expected_counts.tolist()
    for k in range(8):
        assert _offset_pairs(coords, out, pairs, counts, k) == _offset_pairs(coords, expected_out, expected, expected_counts, k)


def test_known_neighbours():
    """Three voxels in a row along z and one diagonal neighbour: offsets by hand."""
    coords = torch.tensor([[0, 1, 1, 1], [0, 1, 1, 2], [0, 1, 1, 3], [0, 2, 2, 2]], dtype=torch.int32)
    pairs, counts = submanifold_pairs(coords, [4, 4, 5])
    # offset (0, 0, -1) = 12: the input is the output's z - 1
    assert counts[12] == 2 and pairs[:, 12, :2].tolist() == [[0, 1], [1, 2]]
    # (-1, -1, 0) = 1: voxel 3 at (2, 2, 2) sees voxel 1 at (1, 1, 2)
    assert counts[1] == 1 and pairs[:, 1, :1].tolist() == [[1], [3]]
    # (-1, -1, -1) = 0 and (-1, -1, +1) = 2: voxel 3 sees voxels 0 and 2
    assert pairs[:, 0, :1].tolist() == [[0], [3]] and pairs[:, 2, :1].tolist() == [[2], [3]]
    assert counts.sum() == 5
    out, down, down_counts, shape = downsample_pairs(coords, [4, 4, 5])
    assert shape == [2, 2, 2] and out.tolist() == [[0, 0, 0, 0], [0, 0, 0, 1], [0, 1, 1, 1]]
    # (1, 1, 3) -> cell (0, 0, 1) through offset (1, 1, 1) = 7
    assert down_counts[7] == 2 and down[:, 7, :2].tolist() == [[0, 2], [0, 1]]


def test_empty():
    pairs, counts = submanifold_pairs(torch.zeros(0, 4, dtype=torch.int32), [3, 3, 3])
    assert pairs.shape == (2, 27, 0) and counts.sum() == 0
