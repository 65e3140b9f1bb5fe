"""Typed settings of the student model."""

from __future__ import annotations

from dataclasses import dataclass


BACKBONE_VARIANTS = ("small", "minkunet18", "minkunet34")   # models.backbone.VARIANTS


@dataclass
class ModelConfig:
    backbone: str = "small"        # small | minkunet18 | minkunet34
    backend: str = "spconv"        # sparse convolution library
    # per-voxel means of the points' x, y, z (3) and intensity (4); 3 for scans without
    # intensity, which a student reading it predicts poorly (docs/results.md)
    in_channels: int = 4
    # batch norm of the input features: coordinates in metres (tens) would otherwise drown the
    # intensity (0-1), which tells signs, parking and terrain from their look-alikes
    # (docs/results.md)
    input_norm: bool = True
    head_hidden: int = 0           # 0: a linear projection into CLIP space; > 0: an MLP
    logit_scale_init: float = 14.3  # about 1 / 0.07, as CLIP
    learn_logit_scale: bool = True

    def __post_init__(self) -> None:
        from zeroseg3d.errors import ConfigError

        checks = [
            (self.backbone in BACKBONE_VARIANTS,
             f"model.backbone {self.backbone!r} is unknown; known: {', '.join(BACKBONE_VARIANTS)}"),
            (self.backend == "spconv", f"model.backend {self.backend!r} is unknown; known: spconv"),
            (self.in_channels in (3, 4),
             f"model.in_channels must be 3 (x, y, z) or 4 (x, y, z, intensity), not {self.in_channels}"),
            (self.head_hidden >= 0, f"model.head_hidden must be >= 0, not {self.head_hidden}"),
            (0 < self.logit_scale_init <= 100, f"model.logit_scale_init must be in (0, 100], not {self.logit_scale_init}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
