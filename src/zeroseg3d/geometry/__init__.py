"""Pure geometry on numpy arrays: projection and pairing, voxels, augmentation."""

from zeroseg3d.geometry.augment import AugmentConfig, apply_transform, random_transform
from zeroseg3d.geometry.projection import (
    OcclusionConfig,
    Pairing,
    PairingConfig,
    occlusion_mask,
    pair_points,
    project_points,
)
from zeroseg3d.geometry.voxelize import Voxelization, voxelize

__all__ = [
    "AugmentConfig", "apply_transform", "random_transform",
    "OcclusionConfig", "Pairing", "PairingConfig", "occlusion_mask", "pair_points",
    "project_points", "Voxelization", "voxelize",
]
