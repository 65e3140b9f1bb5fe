"""Frame -> training sample (pairing, augmentation, voxels) and the batch collate."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from zeroseg3d.datasets.frame import Frame
from zeroseg3d.datasets.vocabulary import IGNORE_INDEX
from zeroseg3d.geometry.augment import Augmentation, apply_augmentations, augmented, draw_augmentation
from zeroseg3d.geometry.config import AugmentConfig, PairingConfig
from zeroseg3d.geometry.projection import Pairing, pair_points
from zeroseg3d.geometry.voxelize import voxelize


@dataclass
class Sample:
    """One frame ready for batching. points are augmented; pairing refers to point indices
    and to pixels of the un-augmented geometry; ``transform`` maps original xyz to points.
    A sample left to the batch's device (``SampleBuilder(on_device=True)``) has its points as
    read, its draw in ``augmentation`` and no voxels: ``finish_batch`` augments and voxelizes
    (at ``voxel_size``) the batch where it is."""

    frame_id: str
    points: np.ndarray          # (N, 4) float32
    labels: np.ndarray          # (N,) int64, IGNORE_INDEX where unlabelled
    pairing: Pairing
    voxel_coords: np.ndarray | None    # (V, 3) int32
    point_to_voxel: np.ndarray | None  # (N,) int64
    transform: np.ndarray       # (4, 4)
    point_extras: dict[str, np.ndarray] = field(default_factory=dict)  # (N, ...) per point
    pair_extras: dict[str, np.ndarray] = field(default_factory=dict)   # (P, ...) per pair
    patch_features: np.ndarray | None = None  # (K, D) teacher patches; pair_patch indexes rows
    voxel_size: float | None = None
    augmentation: Augmentation | None = None   # drawn, not yet applied


class SampleBuilder:
    """Frames -> samples: paired with the cameras, augmented (``augment``) and voxelized at
    ``voxel_size``; with ``on_device`` the augmentation is only drawn and both are left to the
    batch's device (``finish_batch``: what the training loader's workers build, the training
    step finishing the batch where it runs)."""

    def __init__(self, voxel_size: float, pairing: PairingConfig | None = None,
                 augment: AugmentConfig | None = None, on_device: bool = False):
        self.voxel_size = voxel_size
        self.pairing = pairing or PairingConfig()
        self.augment = augment
        self.on_device = on_device

    def __call__(self, frame: Frame, rng: np.random.Generator | None = None,
                 pairing: Pairing | None = None) -> Sample:
        """The sample of ``frame``, augmented with ``rng``; ``pairing``: the frame's pairing
        with its cameras when known (the teacher cache holds it), computed otherwise."""
        # Pair first: projection needs the geometry the calibration describes.
        if pairing is None:
            pairing = pair_points(frame.xyz, frame.cameras, self.pairing)
        augmentation = None
        if self.augment is not None and self.augment.enabled:
            augmentation = draw_augmentation(self.augment, rng if rng is not None else np.random.default_rng())
        labels = (frame.labels if frame.labels is not None
                  else np.full(frame.num_points, IGNORE_INDEX, dtype=np.int64))
        if self.on_device:
            return Sample(frame.frame_id, frame.points, labels, pairing, None, None,
                          np.eye(4) if augmentation is None else augmentation.transform,
                          voxel_size=self.voxel_size, augmentation=augmentation)
        points, transform = frame.points, np.eye(4)
        if augmentation is not None:
            points, transform = augmented(frame.points, augmentation), augmentation.transform
        voxels = voxelize(points[:, :3], self.voxel_size)
        return Sample(frame.frame_id, points, labels, pairing, voxels.coords, voxels.point_to_voxel, transform,
                      voxel_size=self.voxel_size)


# pair extras that index rows of the samples' patch_features
PATCH_ROWS = ("pair_patch", "pair_taps")


def collate(samples: list[Sample], compact: bool = False) -> dict:
    """Concatenate samples; indices into points and voxels are offset per sample.

    Returns torch tensors: points (N, 4), labels (N,), offsets (B+1,) point offsets,
    voxel_coords (V, 4) int32 as (batch, x, y, z), point_to_voxel (N,), pair_point (P,) the
    point of each point-pixel pair; and frame_ids, a list. Samples left to the device give
    voxel_size and their augmentations instead of voxel_coords and point_to_voxel
    (``finish_batch``). Point and pair extras (the
    teacher's labels and patch rows) are concatenated under their own names; those of
    ``PATCH_ROWS`` are offset into the concatenated ``patch_features``. (What only the geometry
    needs, pixels, depths and augmentation transforms, stays in the samples.) Labels and
    indices are int64, or int32 with ``compact`` (what the training loader's workers send:
    the main process pays per byte to receive and free a batch; ``widen`` restores them).
    """
    import torch

    point_counts = [len(s.points) for s in samples]
    point_offsets = np.concatenate([[0], np.cumsum(point_counts)])
    batch = {
        "frame_ids": [s.frame_id for s in samples],
        "points": torch.from_numpy(np.concatenate([s.points for s in samples])),
        "labels": torch.from_numpy(np.concatenate([s.labels for s in samples])),
        "offsets": torch.from_numpy(point_offsets),
        "pair_point": torch.from_numpy(np.concatenate([s.pairing.point_idx + point_offsets[b]
                                                       for b, s in enumerate(samples)])),
    }
    if samples[0].voxel_coords is None:
        batch["voxel_size"] = samples[0].voxel_size
        batch["augmentations"] = [s.augmentation for s in samples]
    else:
        voxel_offsets = np.concatenate([[0], np.cumsum([len(s.voxel_coords) for s in samples])])
        batch["voxel_coords"] = torch.from_numpy(np.concatenate([
            np.concatenate([np.full((len(s.voxel_coords), 1), b, np.int32), s.voxel_coords], axis=1)
            for b, s in enumerate(samples)]))
        batch["point_to_voxel"] = torch.from_numpy(np.concatenate(
            [s.point_to_voxel + voxel_offsets[b] for b, s in enumerate(samples)]))
    for key in samples[0].point_extras:
        batch[key] = torch.from_numpy(np.concatenate([s.point_extras[key] for s in samples]))
    patch_offset = 0
    pair_extras: dict[str, list] = {key: [] for key in samples[0].pair_extras}
    for s in samples:
        for key, value in s.pair_extras.items():
            pair_extras[key].append(value + patch_offset if key in PATCH_ROWS else value)
        patch_offset += 0 if s.patch_features is None else len(s.patch_features)
    for key, values in pair_extras.items():
        batch[key] = torch.from_numpy(np.concatenate(values))
    if samples[0].patch_features is not None:
        batch["patch_features"] = torch.from_numpy(np.concatenate([s.patch_features for s in samples]))
    if compact:
        batch = {k: (v.int() if isinstance(v, torch.Tensor) and v.dtype == torch.int64 and k != "offsets" else v)
                 for k, v in batch.items()}
    return batch


def collate_compact(samples: list[Sample]) -> dict:
    """``collate(samples, compact=True)``, picklable for the loader's workers."""
    return collate(samples, compact=True)


def widen(batch: dict) -> dict:
    """A ``collate_compact`` batch with its labels and indices int64 again (voxel_coords stay
    int32, as spconv takes them); best called on the batch's device, after the copy."""
    import torch

    return {k: (v.long() if isinstance(v, torch.Tensor) and v.dtype == torch.int32 and k != "voxel_coords" else v)
            for k, v in batch.items()}


def finish_batch(batch: dict) -> dict:
    """``batch`` with its points augmented and voxelized where they are, when its samples were
    left to its device (``SampleBuilder(on_device=True)``; other batches as they are): the
    same points and voxels as the samples built and collated whole (geometry.augment,
    geometry.voxelize.voxelize_batch)."""
    if "voxel_coords" in batch:
        return batch
    from zeroseg3d.geometry.voxelize import voxelize_batch

    batch = dict(batch)
    draws = batch.pop("augmentations")
    if any(draw is not None for draw in draws):
        batch["points"] = batch["points"].clone()
        apply_augmentations(batch["points"], batch["offsets"], draws)
    batch["voxel_coords"], batch["point_to_voxel"] = voxelize_batch(batch["points"][:, :3], batch["offsets"],
                                                                    batch.pop("voxel_size"))
    return batch

