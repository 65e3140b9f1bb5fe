"""Augmentations as rigid-plus-scale transforms that keep the point <-> pixel pairing valid.

The pairing is computed on the un-augmented points and indexes points, so transforming
coordinates (never dropping or reordering points) leaves it valid. The 4x4 transform is
returned, so that augmented coordinates can be taken back before any projection.
"""

from __future__ import annotations

import numpy as np

from zeroseg3d.geometry.config import AugmentConfig


def random_transform(config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """A random (4, 4) transform: rotation about z, flips of x/y, isotropic scale."""
    angle = np.deg2rad(rng.uniform(-config.rotate_z_deg, config.rotate_z_deg))
    c, s = np.cos(angle), np.sin(angle)
    linear = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    flips = np.diag([
        -1.0 if rng.random() < config.flip_x_prob else 1.0,
        -1.0 if rng.random() < config.flip_y_prob else 1.0,
        1.0,
    ])
    scale = rng.uniform(config.scale_min, config.scale_max)
    transform = np.eye(4)
    transform[:3, :3] = scale * flips @ linear
    return transform


def apply_transform(xyz: np.ndarray, transform: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(N, 3) float32 ``transform``ed (computed in float64), into ``out`` (N, >= 3) if given."""
    # column by column: numpy's float64 matrix product with 3 columns is 2.5x slower
    x, y, z = (np.asarray(xyz[:, axis], np.float64) for axis in range(3))
    out = np.empty((len(x), 3), np.float32) if out is None else out
    for row in range(3):
        t = transform[row]
        out[:, row] = t[0] * x + t[1] * y + t[2] * z + t[3]
    return out[:, :3]


def augment_points(points: np.ndarray, config: AugmentConfig, rng: np.random.Generator):
    """(N, 4) points -> (augmented points, (4, 4) transform of the rigid-plus-scale part).

    Jitter is per-point noise on top of the transform; it is not part of the returned matrix.
    """
    if not config.enabled:
        return points.copy(), np.eye(4)
    transform = random_transform(config, rng)
    out = points.copy()
    apply_transform(points, transform, out=out)
    if config.jitter_sigma > 0:
        add_jitter(out, config.jitter_sigma, config.jitter_clip, rng)
    return out, transform


def add_jitter(points: np.ndarray, sigma: float, clip: float, rng: np.random.Generator) -> None:
    """Adds normal noise of ``sigma`` clipped to +-``clip`` to the xyz of (N, >= 3) float32
    ``points`` in place. torch draws it from a generator seeded by ``rng``: at twice numpy's
    float32 normal rate, the same draw on one thread or many (docs/results.md)."""
    import torch

    generator = torch.Generator().manual_seed(int(rng.integers(2 ** 63)))
    noise = torch.randn((3, len(points)), generator=generator).mul_(sigma).clamp_(-clip, clip)
    target = torch.from_numpy(points)
    for axis in range(3):
        target[:, axis].add_(noise[axis])
