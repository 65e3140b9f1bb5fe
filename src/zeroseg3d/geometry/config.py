"""Geometry settings: the point-pixel pairing (with its occlusion test) and augmentation;
each validated when made."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class OcclusionConfig:
    """A point is hidden when a nearer point lies within ``radius_px`` pixels of it and is
    nearer by more than max(abs_tol, rel_tol * depth). LiDAR sees around objects that the
    camera, mounted elsewhere, cannot: without this test such points get the occluder's pixel."""

    enabled: bool = True
    radius_px: int = 2
    rel_tol: float = 0.1
    abs_tol: float = 0.3

    def __post_init__(self) -> None:
        from zeroseg3d.errors import ConfigError

        if self.radius_px < 0 or self.rel_tol < 0 or self.abs_tol < 0:
            raise ConfigError(f"data.pairing.occlusion values must be >= 0, not radius_px={self.radius_px}, "
                              f"rel_tol={self.rel_tol}, abs_tol={self.abs_tol}")


@dataclass
class PairingConfig:
    min_depth: float = 1.0
    occlusion: OcclusionConfig = field(default_factory=OcclusionConfig)

    def __post_init__(self) -> None:
        from zeroseg3d.errors import ConfigError

        if not self.min_depth >= 0:
            raise ConfigError(f"data.pairing.min_depth must be >= 0, not {self.min_depth}")



@dataclass
class AugmentConfig:
    enabled: bool = True
    rotate_z_deg: float = 180.0      # uniform rotation in [-a, a] about the up axis
    flip_x_prob: float = 0.5
    flip_y_prob: float = 0.5
    scale_min: float = 0.95
    scale_max: float = 1.05
    jitter_sigma: float = 0.01       # metres, clipped to +-jitter_clip
    jitter_clip: float = 0.05
    # share of training scans whose intensity is dropped (every value 0, read as a scan without
    # any): a student of intensity then also learns to segment scans that have none
    intensity_dropout: float = 0.0

    def __post_init__(self) -> None:
        from zeroseg3d.errors import ConfigError

        checks = [
            (0 <= self.rotate_z_deg <= 180, f"data.augment.rotate_z_deg must be in [0, 180], not {self.rotate_z_deg}"),
            (0 <= self.flip_x_prob <= 1 and 0 <= self.flip_y_prob <= 1,
             f"data.augment flip probabilities must be in [0, 1], not {self.flip_x_prob}, {self.flip_y_prob}"),
            (0 < self.scale_min <= self.scale_max,
             f"data.augment needs 0 < scale_min <= scale_max, not {self.scale_min}, {self.scale_max}"),
            (self.jitter_sigma >= 0 and self.jitter_clip >= 0,
             f"data.augment jitter must be >= 0, not {self.jitter_sigma}, {self.jitter_clip}"),
            (0 <= self.intensity_dropout <= 1,
             f"data.augment.intensity_dropout must be in [0, 1], not {self.intensity_dropout}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
