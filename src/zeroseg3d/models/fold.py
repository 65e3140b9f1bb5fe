"""Batch norms folded into the layers before them, for inference.

In eval mode a batch norm is y = s * x + t per channel (s = weight / sqrt(running_var + eps),
t = bias - running_mean * s). After a convolution or linear layer x = W u + b it is the same
layer with weights s * W and bias s * b + t: one pass over the (voxels x channels) features
less per layer, and on a GPU spconv adds the bias inside its convolution kernel.
"""

from __future__ import annotations

import torch
from torch import nn


def _scale_shift(norm: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    scale = norm.weight.detach() / torch.sqrt(norm.running_var + norm.eps)
    return scale, norm.bias.detach() - norm.running_mean * scale


def _fold_sparse_conv(conv: nn.Module, norm: nn.BatchNorm1d) -> None:
    scale, shift = _scale_shift(norm)
    weight = conv.weight.data
    if conv.conv1x1:   # spconv reads a 1x1 kernel's weight memory as (C_in, C_out)
        weight.view(conv.in_channels, conv.out_channels).mul_(scale[None, :])
    else:              # (C_out, k, k, k, C_in)
        weight.mul_(scale.view(-1, *[1] * (weight.dim() - 1)))
    bias = shift if conv.bias is None else conv.bias.detach() * scale + shift
    conv.bias = nn.Parameter(bias.clone(), requires_grad=False)


def _fold_linear(linear: nn.Linear, norm: nn.BatchNorm1d) -> None:
    scale, shift = _scale_shift(norm)
    linear.weight.data.mul_(scale[:, None])
    bias = shift if linear.bias is None else linear.bias.detach() * scale + shift
    linear.bias = nn.Parameter(bias.clone(), requires_grad=False)


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """``model``, in eval mode, with every BatchNorm1d that directly follows a sparse
    convolution or a linear layer in a (Sparse)Sequential folded into that layer and replaced by
    nn.Identity (in place; returns ``model``). Its outputs are the unfolded model's in eval
    mode within float32 rounding; its state dict is no longer a checkpoint's."""
    from zeroseg3d.models.spconv_compat import import_spconv

    spconv = import_spconv()
    from spconv.pytorch.conv import SparseConvolution

    model.eval()
    with torch.no_grad():
        for sequence in list(model.modules()):
            if not isinstance(sequence, (nn.Sequential, spconv.SparseSequential)):
                continue
            names = list(sequence._modules)
            for first, second in zip(names, names[1:]):
                layer, norm = sequence._modules[first], sequence._modules[second]
                if not isinstance(norm, nn.BatchNorm1d) or not norm.track_running_stats:
                    continue
                if isinstance(layer, SparseConvolution):
                    _fold_sparse_conv(layer, norm)
                elif isinstance(layer, nn.Linear):
                    _fold_linear(layer, norm)
                else:
                    continue
                sequence._modules[second] = nn.Identity()
    return model
