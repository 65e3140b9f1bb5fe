"""Augmentations as rigid-plus-scale transforms that keep the point <-> pixel pairing valid.

The pairing is computed on the un-augmented points and indexes points, so transforming
coordinates (never dropping or reordering points) leaves it valid. The 4x4 transform is
returned, so that augmented coordinates can be taken back before any projection.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def transformed_columns(x, y, z, transform: np.ndarray) -> list:
    """The x, y, z columns (float64 numpy arrays or torch tensors) under ``transform`` (4, 4),
    column by column: numpy's float64 matrix product with 3 columns is 2.5x slower, and
    torch's rounds otherwise."""
    return [t[0] * x + t[1] * y + t[2] * z + t[3] for t in np.asarray(transform, np.float64)[:3].tolist()]


def apply_transform(xyz: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """(N, 3) float32 ``transform``ed (computed in float64)."""
    columns = transformed_columns(*(np.asarray(xyz[:, axis], np.float64) for axis in range(3)), transform)
    return np.stack(columns, axis=1).astype(np.float32)


@dataclass
class Augmentation:
    """One scan's draw: the rigid-plus-scale ``transform`` (4, 4), for jitter the seed of its
    noise with the noise's sigma and clip (``jitter_seed`` None: no jitter), and whether its
    intensity is dropped (set to 0)."""

    transform: np.ndarray
    jitter_seed: int | None = None
    jitter_sigma: float = 0.0
    jitter_clip: float = 0.0
    drop_intensity: bool = False


def draw_augmentation(config: AugmentConfig, rng: np.random.Generator) -> Augmentation:
    """A scan's augmentation drawn from ``rng`` (the transform, the jitter's seed, then whether
    the intensity drops; each drawn only where the config asks for it)."""
    if not config.enabled:
        return Augmentation(np.eye(4))
    transform = random_transform(config, rng)
    jitter = (int(rng.integers(2 ** 63)), config.jitter_sigma, config.jitter_clip) if config.jitter_sigma > 0 else ()
    drop = config.intensity_dropout > 0 and bool(rng.random() < config.intensity_dropout)
    return Augmentation(transform, *jitter, drop_intensity=drop)


def augmented(points: np.ndarray, augmentation: Augmentation) -> np.ndarray:
    """(N, 4) float32 ``points`` with ``augmentation`` applied (a new array)."""
    import torch

    out = torch.from_numpy(np.array(points, np.float32))
    apply_augmentations(out, torch.tensor([0, len(out)]), [augmentation])
    return out.numpy()


def apply_augmentations(points, offsets, augmentations: list[Augmentation | None]) -> None:
    """Augments the (N, >= 3) float32 tensor ``points`` in place, on its device, scan by scan
    (``offsets`` (B + 1,) delimit the scans, one augmentation each, None: left as read): the
    transform in float64 (``transformed_columns``), then the jitter: normal noise drawn by
    torch from a generator seeded by the draw (twice numpy's float32 normal rate; the same
    draw on one thread or many), clipped; then the intensity (column 3) dropped to 0 where drawn."""
    import torch

    bounds = offsets.tolist()
    for augmentation, start, stop in zip(augmentations, bounds[:-1], bounds[1:]):
        if augmentation is None:
            continue
        part = points[start:stop]
        if not np.array_equal(augmentation.transform, np.eye(4)):
            columns = (part[:, axis].to(torch.float64, copy=True) for axis in range(3))   # part is overwritten
            for row, values in enumerate(transformed_columns(*columns, augmentation.transform)):
                part[:, row] = values
        if augmentation.jitter_seed is not None:
            generator = torch.Generator(points.device).manual_seed(augmentation.jitter_seed)
            noise = torch.randn((3, stop - start), generator=generator, device=points.device)
            noise.mul_(augmentation.jitter_sigma).clamp_(-augmentation.jitter_clip, augmentation.jitter_clip)
            for axis in range(3):
                part[:, axis].add_(noise[axis])
        if augmentation.drop_intensity and part.shape[1] > 3:
            part[:, 3] = 0
