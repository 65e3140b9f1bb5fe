"""Sparse convolutions on the CPU equal dense convolution, forward and backward, with several
threads: spconv's (whose own CPU scatter-add races between threads; models/spconv_compat.py
replaces it), and zeroseg3d's modules (models/sparse_conv.py) with their own rulebooks
(models/rulebook.py) and bfloat16 CPU products."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zeroseg3d.models.sparse_conv import compute_dtype, sparse_modules
from zeroseg3d.models.spconv_compat import import_spconv

pytest.importorskip("spconv")

SIZE = 40


@pytest.fixture
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def _sparse_input(channels=8, count=30000, seed=0):   # ~25k voxels: over OWN_RULEBOOK_MIN_VOXELS
    rng = np.random.default_rng(seed)
    xyz = np.unique(rng.integers(0, SIZE, size=(count, 3)), axis=0)
    coords = torch.from_numpy(np.concatenate([np.zeros((len(xyz), 1), np.int64), xyz], 1)).int()
    features = torch.randn(len(xyz), channels, generator=torch.Generator().manual_seed(seed))
    return coords, features


def _at(grid, coords):
    c = coords.long()
    return grid[0][:, c[:, 1], c[:, 2], c[:, 3]].T


def _key_order(coords):
    c = coords.long()
    return torch.argsort(((c[:, 0] * SIZE + c[:, 1]) * SIZE + c[:, 2]) * SIZE + c[:, 3])


def _dense_weight(layer):
    return layer.weight.permute(0, 4, 1, 2, 3)  # spconv: (out, k, k, k, in)


# (modules, bfloat16 products); zeroseg3d's modules in float32 run spconv's kernels on the
# submanifold rulebooks of models/rulebook.py, in bfloat16 their own products on its rulebooks
CASES = {"spconv": ("spconv", False), "zeroseg3d_fp32": ("zeroseg3d", False), "zeroseg3d_bf16": ("zeroseg3d", True)}


def _close(actual, expected, atol, bf16):
    """float32: within atol; bfloat16 (8 bits of mantissa): the largest error within 2% of the
    largest value (a wrong pair or offset is off by the values themselves)."""
    if bf16:
        assert (actual - expected).abs().max() <= 0.02 * expected.abs().max()
    else:
        torch.testing.assert_close(actual, expected, atol=atol, rtol=1e-4)


@pytest.mark.parametrize("case", list(CASES))
def test_submanifold_and_strided_convolutions_match_dense_forward_and_backward(two_threads, case, monkeypatch):
    from zeroseg3d.models import sparse_conv

    family, bf16 = CASES[case]
    monkeypatch.setattr(sparse_conv, "BF16_MIN_WORK", 0)   # bfloat16 products in every layer
    spconv = import_spconv()
    modules = spconv if family == "spconv" else sparse_modules()
    coords, features = _sparse_input()
    torch.manual_seed(0)
    subm = modules.SubMConv3d(8, 16, 3, bias=False, indice_key="s")
    down = modules.SparseConv3d(16, 12, 2, stride=2, bias=False, indice_key="d")
    up = modules.SparseInverseConv3d(12, 6, 2, bias=False, indice_key="d")

    sparse_in = features.clone().requires_grad_(True)
    x = spconv.SparseConvTensor(sparse_in, coords, [SIZE] * 3, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        a = subm(x)
        b = down(a)
        c = up(b)
    assert torch.equal(c.indices, coords)
    assert c.features.dtype == torch.float32
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

    _close(a.features, _at(a_dense, coords), 1e-4, bf16)
    _close(b.features, _at(b_dense, b.indices), 1e-4, bf16)
    _close(c.features, _at(c_dense, coords), 1e-4, bf16)
    _close(sparse_in.grad, dense_in.grad, 1e-3, bf16)
    for layer, sparse_grad in zip((subm, down, up), sparse_weight_grads):
        _close(sparse_grad, layer.weight.grad, 1e-2, bf16)


def test_own_modules_are_spconvs_with_the_same_parameters_and_1x1_reading(two_threads, monkeypatch):
    """Checkpoints of spconv's modules load into zeroseg3d's, which compute in float32 with
    spconv's kernels and in bfloat16 the same within its rounding, the 1x1 convolution included
    (spconv reads its (out, 1, 1, 1, in) weight as (in, out))."""
    spconv = import_spconv()
    ours = sparse_modules()
    from zeroseg3d.models import sparse_conv

    monkeypatch.setattr(sparse_conv, "BF16_MIN_WORK", 0)
    coords, features = _sparse_input(channels=6)
    torch.manual_seed(1)
    theirs = spconv.SparseSequential(spconv.SubMConv3d(6, 6, 3, bias=True, indice_key="s"),
                                     spconv.SubMConv3d(6, 10, 1, bias=False))
    mine = spconv.SparseSequential(ours.SubMConv3d(6, 6, 3, bias=True, indice_key="s"),
                                   ours.SubMConv3d(6, 10, 1, bias=False))
    assert isinstance(mine[0], spconv.SubMConv3d)
    mine.load_state_dict(theirs.state_dict())
    x = spconv.SparseConvTensor(features, coords, [SIZE] * 3, 1)
    with torch.no_grad():
        expected = theirs(x).features
        assert torch.equal(mine(x).features, expected)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            _close(mine(x).features, expected, 0, bf16=True)


def test_small_layers_stay_float32_under_bfloat16_autocast(two_threads):
    """Below BF16_MIN_WORK (voxels x C_in x C_out) the conversions would cost more than the
    bfloat16 products save: such a layer gives its float32 result to the bit under autocast,
    and a larger one does not."""
    from zeroseg3d.models.sparse_conv import BF16_MIN_WORK

    spconv = import_spconv()
    coords, features = _sparse_input(channels=32)
    x = spconv.SparseConvTensor(features, coords, [SIZE] * 3, 1)
    torch.manual_seed(3)
    for width, exact in ((16, True), (128, False)):
        assert (len(coords) * 32 * width < BF16_MIN_WORK) == exact
        layer = sparse_modules().SubMConv3d(32, width, 3, bias=False, indice_key="s")
        with torch.no_grad():
            expected = layer(x).features
            with torch.autocast("cpu", dtype=torch.bfloat16):
                actual = layer(x).features
        assert torch.equal(actual, expected) == exact
        _close(actual, expected, 0, bf16=True)


def test_compute_dtype_follows_cpu_autocast():
    assert compute_dtype() == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert compute_dtype() == torch.bfloat16
    with torch.autocast("cpu", dtype=torch.float16):
        assert compute_dtype() == torch.float32


def test_bucket_sizes_cover_the_rows_with_little_padding_and_repeat():
    from zeroseg3d.models.sparse_conv import bucket

    sizes = [bucket(n) for n in range(1, 100001)]
    assert all(s >= n and s % 16 == 0 for n, s in zip(range(1, 100001), sizes))
    assert all(s <= 1.19 * n + 16 for n, s in zip(range(1, 100001), sizes))
    assert sizes == sorted(sizes) and len(set(sizes)) < 80   # few shapes, so their kernels are reused


def test_own_rulebooks_are_used_on_large_inputs_and_give_spconvs_results(monkeypatch):
    """Over OWN_RULEBOOK_MIN_VOXELS voxels the submanifold rulebook is models/rulebook.py's,
    and the convolution equals spconv's own to the bit."""
    from zeroseg3d.models import sparse_conv

    calls = []
    original = sparse_conv.submanifold_pairs
    monkeypatch.setattr(sparse_conv, "submanifold_pairs", lambda *a: calls.append(len(a[0])) or original(*a))
    spconv = import_spconv()
    coords, features = _sparse_input()
    assert len(coords) >= sparse_conv.OWN_RULEBOOK_MIN_VOXELS
    torch.manual_seed(2)
    theirs = spconv.SubMConv3d(8, 8, 3, bias=False, indice_key="s")
    mine = sparse_modules().SubMConv3d(8, 8, 3, bias=False, indice_key="s")
    mine.load_state_dict(theirs.state_dict())
    x = spconv.SparseConvTensor(features, coords, [SIZE] * 3, 1)
    with torch.no_grad():
        assert torch.equal(mine(x).features, theirs(x).features)
    assert calls == [len(coords)]
    small = spconv.SparseConvTensor(features[:1000], coords[:1000], [SIZE] * 3, 1)
    with torch.no_grad():
        mine(small)
    assert calls == [len(coords)]   # below the threshold spconv builds it


def test_float32_strided_convolutions_use_own_rulebooks_and_give_spconvs_results(monkeypatch):
    """A kernel-2 stride-2 convolution over OWN_RULEBOOK_MIN_VOXELS voxels runs spconv's float32
    kernels on models/rulebook.py's rulebook: spconv's own result to the bit, and the inverse
    convolution after it reuses that rulebook."""
    from zeroseg3d.models import sparse_conv

    calls = []
    original = sparse_conv.downsample_pairs
    monkeypatch.setattr(sparse_conv, "downsample_pairs", lambda *a: calls.append(len(a[0])) or original(*a))
    spconv = import_spconv()
    coords, features = _sparse_input()
    torch.manual_seed(4)
    theirs = spconv.SparseSequential(spconv.SparseConv3d(8, 8, 2, stride=2, bias=False, indice_key="d"),
                                     spconv.SparseInverseConv3d(8, 8, 2, bias=False, indice_key="d"))
    ours = sparse_modules()
    mine = spconv.SparseSequential(ours.SparseConv3d(8, 8, 2, stride=2, bias=False, indice_key="d"),
                                   ours.SparseInverseConv3d(8, 8, 2, bias=False, indice_key="d"))
    mine.load_state_dict(theirs.state_dict())
    x = spconv.SparseConvTensor(features, coords, [SIZE] * 3, 1)
    with torch.no_grad():
        down_theirs, down_mine = theirs[0](x), mine[0](x)
        # the same output voxels (here in key order, spconv's in its hash table's), the same rows
        assert torch.equal(down_mine.indices[_key_order(down_mine.indices)],
                           down_theirs.indices[_key_order(down_theirs.indices)])
        assert torch.equal(down_mine.features[_key_order(down_mine.indices)],
                           down_theirs.features[_key_order(down_theirs.indices)])
        assert torch.equal(mine[1](down_mine).features, theirs[1](down_theirs).features)
    assert calls == [len(coords)]


def test_gpu_dtype_is_float16_only_under_cuda_autocast_and_cpu_training_is_unscaled():
    # spconv has no bfloat16 GPU kernels: under any CUDA autocast the convolutions run in float16
    # and the loss is scaled; the CPU never is (its bfloat16 needs no scaling)
    from zeroseg3d.errors import ConfigError
    from zeroseg3d.models.sparse_conv import gpu_compute_dtype
    from zeroseg3d.utils.device import grad_scaler

    assert gpu_compute_dtype() is None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert gpu_compute_dtype() is None
    for precision in ("auto", "fp32", "bf16"):
        assert not grad_scaler("cpu", precision).is_enabled()
    with pytest.raises(ConfigError, match="precision"):
        grad_scaler("cpu", "fp16")


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_predicts_in_bfloat16_only_on_cpus_with_bfloat16_units(monkeypatch, native):
    """``auto`` on the CPU: float32 in training; at inference bfloat16 where the CPU multiplies
    it in hardware; an explicit precision is kept either way."""
    from zeroseg3d.utils import device

    monkeypatch.setattr(device, "native_bf16", lambda: native)
    for precision, inference, expected in (("auto", False, torch.float32), ("auto", True, torch.bfloat16 if native
                                           else torch.float32), ("fp32", True, torch.float32),
                                           ("bf16", False, torch.bfloat16)):
        with device.autocast("cpu", precision, inference=inference):
            assert compute_dtype() == expected, (precision, inference)


def test_building_sparse_tensors_logs_no_torch_fx_warning(caplog):
    import logging

    import torch.fx._symbolic_trace as fx_trace

    spconv = import_spconv()
    fx_trace.is_fx_tracing_warning.cache_clear()   # torch warns once per process
    with caplog.at_level(logging.WARNING):
        spconv.SparseConvTensor(torch.ones(1, 1), torch.zeros(1, 4, dtype=torch.int32), [4, 4, 4], 1)
        logging.getLogger("torch.fx._symbolic_trace").warning("another fx warning")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["another fx warning"]
