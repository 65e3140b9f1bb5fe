"""Frame -> training sample (pairing, augmentation, voxels) and the batch collate."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from zeroseg3d.datasets.frame import Frame
from zeroseg3d.datasets.vocabulary import IGNORE_INDEX
from zeroseg3d.geometry.augment import augment_points
from zeroseg3d.geometry.config import AugmentConfig, PairingConfig
from zeroseg3d.geometry.projection import Pairing, pair_points
from zeroseg3d.geometry.voxelize import voxelize


@dataclass
class Sample:
    """One frame ready for batching. points are augmented; pairing refers to point indices
    and to pixels of the un-augmented geometry; ``transform`` maps original xyz to points.
    Without voxels (``SampleBuilder(voxelize=False)``) the batch's device voxelizes the points
    at ``voxel_size`` (``with_voxels``)."""

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


class SampleBuilder:
    """Frames -> samples: paired with the cameras, augmented (``augment``) and voxelized at
    ``voxel_size``, or left for the batch's device to voxelize (``voxelize=False``: what the
    training loader's workers build; the training step voxelizes on its device)."""

    def __init__(self, voxel_size: float, pairing: PairingConfig | None = None,
                 augment: AugmentConfig | None = None, voxelize: bool = True):
        self.voxel_size = voxel_size
        self.pairing = pairing or PairingConfig()
        self.augment = augment
        self.voxelize = voxelize

    def __call__(self, frame: Frame, rng: np.random.Generator | None = None,
                 pairing: Pairing | None = None) -> Sample:
        """The sample of ``frame``, augmented with ``rng``; ``pairing``: the frame's pairing
        with its cameras when known (the teacher cache holds it), computed otherwise."""
        # Pair first: projection needs the geometry the calibration describes.
        if pairing is None:
            pairing = pair_points(frame.xyz, frame.cameras, self.pairing)
        if self.augment is not None and self.augment.enabled:
            points, transform = augment_points(frame.points, self.augment,
                                               rng if rng is not None else np.random.default_rng())
        else:
            points, transform = frame.points, np.eye(4)
        coords = point_to_voxel = None
        if self.voxelize:
            voxels = voxelize(points[:, :3], self.voxel_size)
            coords, point_to_voxel = voxels.coords, voxels.point_to_voxel
        labels = (frame.labels if frame.labels is not None
                  else np.full(frame.num_points, IGNORE_INDEX, dtype=np.int64))
        return Sample(frame.frame_id, points, labels, pairing, coords, point_to_voxel, transform,
                      voxel_size=self.voxel_size)


# pair extras that index rows of the samples' patch_features
PATCH_ROWS = ("pair_patch", "pair_taps")


def collate(samples: list[Sample], compact: bool = False) -> dict:
    """Concatenate samples; indices into points and voxels are offset per sample.

    Returns torch tensors: points (N, 4), labels (N,), offsets (B+1,) point offsets,
    voxel_coords (V, 4) int32 as (batch, x, y, z), point_to_voxel (N,), pair_point (P,) the
    point of each point-pixel pair; and frame_ids, a list. Samples without voxels give
    voxel_size instead of voxel_coords and point_to_voxel (``with_voxels``). Point and pair extras (the
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


def with_voxels(batch: dict) -> dict:
    """``batch`` with voxel_coords and point_to_voxel, voxelized where its points are when
    the samples came without them (geometry.voxelize.voxelize_batch: the same voxels as
    collating the samples' own)."""
    if "voxel_coords" in batch:
        return batch
    from zeroseg3d.geometry.voxelize import voxelize_batch

    coords, point_to_voxel = voxelize_batch(batch["points"][:, :3], batch["offsets"], batch["voxel_size"])
    return {**batch, "voxel_coords": coords, "point_to_voxel": point_to_voxel}
