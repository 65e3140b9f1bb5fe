"""MinkUNet-style sparse 3D UNets on spconv.

Encoder: a stem of submanifold convolutions, then stages that halve the resolution with a
stride-2 sparse convolution followed by residual submanifold blocks. Decoder: inverse
convolutions back to each resolution, concatenation with the encoder's features there, and
residual blocks. Voxel features of the finest resolution come out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from zeroseg3d.models.sparse_conv import sparse_modules
from zeroseg3d.models.spconv_compat import import_spconv
from zeroseg3d.registry import Registry


@dataclass(frozen=True)
class UNetSpec:
    stem: int
    encoder: tuple[int, ...]       # channels of each downsampling stage
    encoder_blocks: tuple[int, ...]
    decoder: tuple[int, ...]       # channels after each upsampling stage
    decoder_blocks: tuple[int, ...]


VARIANTS = {
    # a CPU-friendly variant for tests and the synthetic world
    "small": UNetSpec(16, (32, 48, 64, 96), (1, 1, 1, 1), (64, 48, 48, 48), (1, 1, 1, 1)),
    # MinkUNet18 / 34 (Choy et al.) widths and depths
    "minkunet18": UNetSpec(32, (32, 64, 128, 256), (2, 2, 2, 2), (256, 128, 96, 96), (2, 2, 2, 2)),
    "minkunet34": UNetSpec(32, (32, 64, 128, 256), (2, 3, 4, 6), (256, 128, 96, 96), (2, 2, 2, 2)),
}

BACKBONES: Registry = Registry("backbone")


def _relu() -> nn.Module:
    return nn.ReLU(inplace=True)   # after batch norms and sums whose outputs nothing else reads


def _norm(channels: int) -> nn.Module:
    return nn.BatchNorm1d(channels, eps=1e-3, momentum=0.1)


class _BasicBlock(nn.Module):
    def __init__(self, sp, channels_in: int, channels: int, key: str):
        super().__init__()
        self.conv = sp.spconv.SparseSequential(
            sp.SubMConv3d(channels_in, channels, 3, bias=False, indice_key=key), _norm(channels), _relu(),
            sp.SubMConv3d(channels, channels, 3, bias=False, indice_key=key), _norm(channels))
        self.skip = (sp.spconv.SparseSequential(sp.SubMConv3d(channels_in, channels, 1, bias=False), _norm(channels))
                     if channels_in != channels else None)
        self.relu = _relu()

    def forward(self, x):
        identity = x.features if self.skip is None else self.skip(x).features
        out = self.conv(x)
        # in place on the batch norm's fresh output (its backward does not read it): no
        # (voxels x channels) copies per block
        return out.replace_feature(self.relu(out.features.add_(identity)))


class SparseUNet(nn.Module):
    def __init__(self, in_channels: int, spec: UNetSpec):
        super().__init__()
        sp = sparse_modules()
        spconv = sp.spconv
        self.stem = spconv.SparseSequential(
            sp.SubMConv3d(in_channels, spec.stem, 3, bias=False, indice_key="subm0"), _norm(spec.stem), _relu(),
            sp.SubMConv3d(spec.stem, spec.stem, 3, bias=False, indice_key="subm0"), _norm(spec.stem), _relu())
        self.down, self.encoder = nn.ModuleList(), nn.ModuleList()
        channels = spec.stem
        skips = [spec.stem]
        for level, (width, blocks) in enumerate(zip(spec.encoder, spec.encoder_blocks), start=1):
            self.down.append(spconv.SparseSequential(
                sp.SparseConv3d(channels, width, 2, stride=2, bias=False, indice_key=f"down{level}"),
                _norm(width), _relu()))
            self.encoder.append(nn.Sequential(*[
                _BasicBlock(sp, width, width, f"subm{level}") for _ in range(blocks)]))
            channels = width
            skips.append(width)
        self.up, self.decoder = nn.ModuleList(), nn.ModuleList()
        for step, (width, blocks) in enumerate(zip(spec.decoder, spec.decoder_blocks)):
            level = len(spec.encoder) - step
            self.up.append(spconv.SparseSequential(
                sp.SparseInverseConv3d(channels, width, 2, bias=False, indice_key=f"down{level}"),
                _norm(width), _relu()))
            skip = skips[level - 1]
            layers = [_BasicBlock(sp, width + skip, width, f"subm{level - 1}")]
            layers += [_BasicBlock(sp, width, width, f"subm{level - 1}") for _ in range(blocks - 1)]
            self.decoder.append(nn.Sequential(*layers))
            channels = width
        self.out_channels = channels

    def forward(self, features: torch.Tensor, coords: torch.Tensor, batch_size: int) -> torch.Tensor:
        """features (V, C_in), coords (V, 4) int32 as (batch, x, y, z) -> (V, C_out)."""
        # each stride-2 level halves the grid: a tiny or flat scan still needs one cell at the bottom
        smallest = 2 ** len(self.down)
        spatial = [max(int(size), smallest) for size in coords[:, 1:].max(dim=0).values + 2]
        x = import_spconv().SparseConvTensor(features, coords.int(), spatial, batch_size)
        x = self.stem(x)
        skips = [x]
        for down, blocks in zip(self.down, self.encoder):
            x = blocks(down(x))
            skips.append(x)
        for step, (up, blocks) in enumerate(zip(self.up, self.decoder)):
            x = up(x)
            skip = skips[-2 - step]
            x = x.replace_feature(torch.cat([x.features, skip.features], dim=1))
            x = blocks(x)
        return x.features


@BACKBONES.register("spconv")
def build_spconv_unet(variant: str, in_channels: int) -> SparseUNet:
    from zeroseg3d.errors import ConfigError

    if variant not in VARIANTS:
        raise ConfigError(f"unknown backbone {variant!r}; known: {', '.join(VARIANTS)}")
    return SparseUNet(in_channels, VARIANTS[variant])
