"""Pure geometry on numpy arrays: projection and pairing, voxels, augmentation; their settings
in config.py."""

from zeroseg3d.geometry.augment import apply_transform, random_transform
from zeroseg3d.geometry.config import AugmentConfig, OcclusionConfig, PairingConfig
from zeroseg3d.geometry.projection import Pairing, occlusion_mask, pair_points, project_points
from zeroseg3d.geometry.voxelize import Voxelization, voxelize

__all__ = [
    "AugmentConfig", "apply_transform", "random_transform",
    "OcclusionConfig", "Pairing", "PairingConfig", "occlusion_mask", "pair_points",
    "project_points", "Voxelization", "voxelize",
]
