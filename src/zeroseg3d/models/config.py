"""Typed settings of the student model."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ModelConfig:
    backbone: str = "small"        # small | minkunet18 | minkunet34
    backend: str = "spconv"        # sparse convolution library
    in_channels: int = 4           # per-voxel mean of x, y, z, intensity
    head_hidden: int = 0           # 0: a linear projection into CLIP space; > 0: an MLP
    logit_scale_init: float = 14.3  # about 1 / 0.07, as CLIP
    learn_logit_scale: bool = True
