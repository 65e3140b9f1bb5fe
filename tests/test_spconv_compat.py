"""spconv on the CPU equals dense convolution, forward and backward, with several threads
(spconv's own CPU scatter-add races between threads; models/spconv_compat.py replaces it)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zeroseg3d.models.spconv_compat import import_spconv

pytest.importorskip("spconv")

SIZE = 40


@pytest.fixture
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def _sparse_input(channels=8, count=12000, seed=0):
    rng = np.random.default_rng(seed)
    xyz = np.unique(rng.integers(0, SIZE, size=(count, 3)), axis=0)
    coords = torch.from_numpy(np.concatenate([np.zeros((len(xyz), 1), np.int64), xyz], 1)).int()
    features = torch.randn(len(xyz), channels, generator=torch.Generator().manual_seed(seed))
    return coords, features


def _at(grid, coords):
    c = coords.long()
    return grid[0][:, c[:, 1], c[:, 2], c[:, 3]].T


def _dense_weight(layer):
    return layer.weight.permute(0, 4, 1, 2, 3)  # spconv: (out, k, k, k, in)


def test_submanifold_and_strided_convolutions_match_dense_forward_and_backward(two_threads):
    spconv = import_spconv()
    coords, features = _sparse_input()
    torch.manual_seed(0)
    subm = spconv.SubMConv3d(8, 16, 3, bias=False, indice_key="s")
    down = spconv.SparseConv3d(16, 12, 2, stride=2, bias=False, indice_key="d")
    up = spconv.SparseInverseConv3d(12, 6, 2, bias=False, indice_key="d")

    sparse_in = features.clone().requires_grad_(True)
    x = spconv.SparseConvTensor(sparse_in, coords, [SIZE] * 3, 1)
    a = subm(x)
    b = down(a)
    c = up(b)
    assert torch.equal(c.indices, coords)
    (c.features ** 2).sum().backward()

    sparse_weight_grads = [layer.weight.grad.clone() for layer in (subm, down, up)]
    for layer in (subm, down, up):
        layer.weight.grad = None

    dense_in = features.clone().requires_grad_(True)
    c_long = coords.long()
    grid = torch.zeros(1, 8, SIZE, SIZE, SIZE)
    grid[0, :, c_long[:, 1], c_long[:, 2], c_long[:, 3]] = dense_in.T
    active = torch.zeros(1, 1, SIZE, SIZE, SIZE)
    active[0, 0, c_long[:, 1], c_long[:, 2], c_long[:, 3]] = 1.0
    # submanifold: a dense 3x3x3 convolution read (and continued) only at the active sites
    a_dense = F.conv3d(grid, _dense_weight(subm), padding=1) * active
    b_dense = F.conv3d(a_dense, _dense_weight(down), stride=2)
    c_dense = F.conv_transpose3d(b_dense, _dense_weight(up).transpose(0, 1), stride=2) * active
    (_at(c_dense, coords) ** 2).sum().backward()

    torch.testing.assert_close(a.features, _at(a_dense, coords), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(b.features, _at(b_dense, b.indices), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(c.features, _at(c_dense, coords), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(sparse_in.grad, dense_in.grad, atol=1e-3, rtol=1e-4)
    for layer, sparse_grad in zip((subm, down, up), sparse_weight_grads):
        torch.testing.assert_close(sparse_grad, layer.weight.grad, atol=1e-2, rtol=1e-4)
