"""The peer network of the speed comparison: a sparse UNet built to Pointcept's published
SemanticKITTI configuration of SpUNet-v1m1 (base channels 32, channels
(32, 64, 128, 256, 256, 128, 96, 96), layers (2, 3, 4, 6, 2, 2, 2, 2), a 5x5x5 submanifold
stem, BatchNorm eps 1e-3 momentum 0.01, a 1x1 submanifold classifier; 39.1M parameters with
4 input channels and 19 classes). Written here from that description so the benchmark needs no
Pointcept install; on spconv, the same library zeroseg3d's student uses, so the comparison is
between networks, not libraries."""

from __future__ import annotations

import torch
from torch import nn

from zeroseg3d.models.spconv_compat import import_spconv

BASE_CHANNELS = 32
CHANNELS = (32, 64, 128, 256, 256, 128, 96, 96)
LAYERS = (2, 3, 4, 6, 2, 2, 2, 2)


def _norm(channels: int) -> nn.Module:
    return nn.BatchNorm1d(channels, eps=1e-3, momentum=0.01)


class _Block(nn.Module):
    """Two 3x3x3 submanifold convolutions with a residual (projected by a 1x1 when widths differ)."""

    def __init__(self, spconv, channels_in: int, channels: int, key: str):
        super().__init__()
        self.conv1 = spconv.SubMConv3d(channels_in, channels, 3, padding=1, bias=False, indice_key=key)
        self.bn1 = _norm(channels)
        self.conv2 = spconv.SubMConv3d(channels, channels, 3, padding=1, bias=False, indice_key=key)
        self.bn2 = _norm(channels)
        self.proj = (None if channels_in == channels else
                     spconv.SparseSequential(spconv.SubMConv3d(channels_in, channels, 1, bias=False), _norm(channels)))

    def forward(self, x):
        residual = x.features if self.proj is None else self.proj(x).features
        out = self.conv1(x)
        out = out.replace_feature(torch.relu(self.bn1(out.features)))
        out = self.conv2(out)
        return out.replace_feature(torch.relu(self.bn2(out.features) + residual))


class ReferenceSpUNet(nn.Module):
    def __init__(self, in_channels: int = 4, num_classes: int = 19):
        super().__init__()
        spconv = import_spconv()
        stages = len(LAYERS) // 2
        self.stem = spconv.SparseSequential(
            spconv.SubMConv3d(in_channels, BASE_CHANNELS, 5, padding=1, bias=False, indice_key="stem"),
            _norm(BASE_CHANNELS), nn.ReLU())
        self.down, self.enc, self.up, self.dec = (nn.ModuleList() for _ in range(4))
        skip_widths = [BASE_CHANNELS] + list(CHANNELS[:stages])
        width = BASE_CHANNELS
        for s in range(stages):
            self.down.append(spconv.SparseSequential(
                spconv.SparseConv3d(width, CHANNELS[s], 2, stride=2, bias=False, indice_key=f"spconv{s + 1}"),
                _norm(CHANNELS[s]), nn.ReLU()))
            self.enc.append(nn.Sequential(*[_Block(spconv, CHANNELS[s], CHANNELS[s], f"subm{s + 1}")
                                            for _ in range(LAYERS[s])]))
            width = CHANNELS[s]
        # decoder stage s (run deepest first) upsamples to resolution s and merges that skip
        for s in reversed(range(stages)):
            out = CHANNELS[len(CHANNELS) - 1 - s]
            self.up.append(spconv.SparseSequential(
                spconv.SparseInverseConv3d(width, out, 2, bias=False, indice_key=f"spconv{s + 1}"),
                _norm(out), nn.ReLU()))
            blocks = [_Block(spconv, out + skip_widths[s], out, f"subm{s}")]
            blocks += [_Block(spconv, out, out, f"subm{s}")
                       for _ in range(LAYERS[len(LAYERS) - 1 - s] - 1)]
            self.dec.append(nn.Sequential(*blocks))
            width = out
        self.final = spconv.SubMConv3d(width, num_classes, 1, bias=True)

    def forward(self, features: torch.Tensor, coords: torch.Tensor, batch_size: int) -> torch.Tensor:
        """features (V, C_in), coords (V, 4) int32 as (batch, x, y, z) -> (V, classes) logits."""
        spatial = (coords[:, 1:].max(dim=0).values + 2).tolist()
        x = import_spconv().SparseConvTensor(features, coords.int(), spatial, batch_size)
        x = self.stem(x)
        skips = [x]
        for down, enc in zip(self.down, self.enc):
            x = enc(down(x))
            skips.append(x)
        skips.pop()
        for up, dec in zip(self.up, self.dec):
            x = up(x)
            x = dec(x.replace_feature(torch.cat([x.features, skips.pop().features], dim=1)))
        return self.final(x).features
