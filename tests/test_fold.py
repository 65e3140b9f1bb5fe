"""Batch norms folded into the layers before them (models/fold.py): the same predictions as
the student as trained, in eval mode, with no batch norm left after a convolution or a linear
layer; convolutions with a bias run at inference on the CPU (spconv's CPU kernels refuse one)."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zeroseg3d.datasets.pipeline import SampleBuilder, collate
from zeroseg3d.datasets.semantickitti import SemanticKITTI
from zeroseg3d.models.config import ModelConfig
from zeroseg3d.models.fold import fold_batch_norms
from zeroseg3d.models.segmentor import create_student
from zeroseg3d.utils.device import autocast

pytest.importorskip("spconv")


def _with_running_statistics(model, seed=0):
    """Batch norms as after training: statistics and affine parameters far from the identity."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.3)
    return model


@pytest.mark.parametrize("head_hidden", [0, 64])
def test_folded_student_predicts_as_the_trained_one(kitti_root, head_hidden, monkeypatch):
    from zeroseg3d.models import sparse_conv

    monkeypatch.setattr(sparse_conv, "BF16_MIN_WORK", 0)   # bfloat16 products in every layer
    frame = SemanticKITTI.from_root(kitti_root, sequences=["00"])[0]
    batch = collate([SampleBuilder(0.2, augment=None)(frame)])
    torch.manual_seed(0)
    # the small variant has 1x1 skip convolutions (spconv reads their weights as (in, out))
    model = _with_running_statistics(create_student(ModelConfig(backbone="small", head_hidden=head_hidden), 32)).eval()
    text = F.normalize(torch.randn(7, 32), dim=-1)
    folded = fold_batch_norms(copy.deepcopy(model))
    norms = [name for name, m in folded.named_modules() if isinstance(m, nn.BatchNorm1d)]
    assert norms == ["input_norm"]   # before the first convolution: nothing to fold into
    with torch.no_grad():
        expected = model(batch, text)["logits"]
        actual = folded(batch, text)["logits"]
        torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-4)
        with autocast("cpu", "bf16"):
            low = folded(batch, text)["logits"]
    assert (low.argmax(1) == expected.argmax(1)).float().mean() > 0.97


def test_sparse_convolution_with_bias_at_inference_on_the_cpu():
    """spconv's own CPU kernels assert on a bias in eval mode; zeroseg3d's modules add it."""
    from zeroseg3d.models.sparse_conv import sparse_modules
    from zeroseg3d.models.spconv_compat import import_spconv

    spconv = import_spconv()
    rng = np.random.default_rng(0)
    xyz = np.unique(rng.integers(0, 12, size=(400, 3)), axis=0)
    coords = torch.from_numpy(np.concatenate([np.zeros((len(xyz), 1), np.int64), xyz], 1)).int()
    features = torch.randn(len(xyz), 4)
    conv = sparse_modules().SubMConv3d(4, 6, 3, bias=True, indice_key="k")
    conv.bias.data.copy_(torch.arange(6.0))
    x = spconv.SparseConvTensor(features, coords, [12] * 3, 1)
    with torch.no_grad():
        trained = conv(x).features   # training mode: spconv adds the bias itself
        conv.eval()
        torch.testing.assert_close(conv(x).features, trained)
        conv.bias.zero_()
        torch.testing.assert_close(conv(x).features, trained - torch.arange(6.0))
