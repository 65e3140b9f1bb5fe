"""Pseudo labels consolidated over time.

The camera sees a part of each scan, and one frame's 2D labels are noisy. Along a sequence
with poses, the teacher's per-point class probabilities of the neighbouring frames are moved
into the current frame's coordinates and vote in voxels: a point of the current frame takes
the mean probability vector of the votes in its voxel, so a contested voxel is as uncertain
as a low-confidence pixel. A point outside the camera's view now gets a label when its place
was in view a few frames earlier, and a place seen several times gets the consensus.

Votes land only on points the current frame has: an object that moved left empty space where
its votes fall, so a driving car does not smear over the road it passed. A moving object can
pass its label to whatever occupies its old place within the window (the next car of a queue,
usually of its own class); the window (default 5 frames each side, half a second at 10 Hz)
bounds that.

The result is a TeacherCache of its own (``point_label``, ``point_conf``, ``view_index``,
``view_probs``: the entries of the per-frame cache) under ``<teacher cache>/temporal``, keyed by the teacher's key, these
settings and the frames of the dataset.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import numpy as np

from zeroseg3d.datasets.base import FrameDataset
from zeroseg3d.teacher.cache import TeacherCache, point_tensors
from zeroseg3d.teacher.config import TemporalConfig


def temporal_cache(cache: TeacherCache, dataset: FrameDataset, config: TemporalConfig) -> TeacherCache:
    """The cache of consolidated labels that belongs to ``cache`` (the per-frame teacher
    outputs), these settings and the frames of ``dataset``."""
    settings = {k: v for k, v in asdict(config).items() if k != "enabled"}
    frames = hashlib.sha256("\n".join(dataset.frame_ids).encode()).hexdigest()
    blob = json.dumps({"teacher": cache.key, "settings": settings, "frames": frames}, sort_keys=True)
    return TeacherCache(cache.root / "temporal", hashlib.sha256(blob.encode()).hexdigest()[:20])


def neighbours(sequences: list[str], window: int) -> list[list[int]]:
    """Per frame, the indices of the frames of its sequence at most ``window`` positions away
    (itself included), in order."""
    out = []
    for i, sequence in enumerate(sequences):
        lo, hi = i, i
        while lo - 1 >= 0 and i - (lo - 1) <= window and sequences[lo - 1] == sequence:
            lo -= 1
        while hi + 1 < len(sequences) and (hi + 1) - i <= window and sequences[hi + 1] == sequence:
            hi += 1
        out.append(list(range(lo, hi + 1)))
    return out


def _voxel_keys(xyz: np.ndarray, voxel: float) -> np.ndarray:
    """One int64 per voxel (21 bits per axis: +-100 km at 0.1 m)."""
    cells = np.floor(xyz / voxel).astype(np.int64) + (1 << 20)
    cells = np.clip(cells, 0, (1 << 21) - 1)
    return (cells[:, 0] << 42) | (cells[:, 1] << 21) | cells[:, 2]


def vote(target_xyz: np.ndarray, sources: list[tuple[np.ndarray, np.ndarray]], voxel_size: float,
         min_confidence: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The target's points that get votes (K,) and their mean class probabilities (K, C), from
    voxel votes of ``sources``: (xyz in the target's coordinates (M, 3), probabilities (M, C)).
    Votes whose top probability is below ``min_confidence`` are left out."""
    xyz = np.concatenate([s[0] for s in sources])
    probs = np.concatenate([s[1] for s in sources]).astype(np.float64)
    keep = (probs.max(1, initial=0.0) >= max(min_confidence, 1e-6)) & np.isfinite(xyz).all(1)
    xyz, probs = xyz[keep], probs[keep]
    if len(probs) == 0 or len(target_xyz) == 0:
        return np.zeros(0, np.int64), np.zeros((0, probs.shape[1]), np.float32)
    voxels, inverse = np.unique(_voxel_keys(xyz, voxel_size), return_inverse=True)
    sums = np.zeros((len(voxels), probs.shape[1]))
    np.add.at(sums, inverse, probs)
    counts = np.bincount(inverse, minlength=len(voxels))
    target = _voxel_keys(target_xyz, voxel_size)
    slot = np.clip(np.searchsorted(voxels, target), 0, len(voxels) - 1)
    hit = np.flatnonzero(voxels[slot] == target)
    return hit, (sums[slot[hit]] / counts[slot[hit], None]).astype(np.float32)


def consolidate(dataset: FrameDataset, cache: TeacherCache, config: TemporalConfig,
                shard: tuple[int, int] = (0, 1), progress: bool = True) -> TeacherCache:
    """Fill (this shard of) the consolidated cache of ``dataset``; frames already there are
    kept. Frames without a pose vote only with their own labels. Returns the cache."""
    from tqdm import tqdm

    from zeroseg3d.errors import DataError

    out = temporal_cache(cache, dataset, config)
    index, count = shard
    todo = [i for i in range(index, len(dataset), count) if out.load(dataset.frame_ids[i]) is None]
    if not todo:
        return out
    groups = neighbours(dataset.frame_sequences, config.window)
    loaded: dict[int, tuple] = {}   # frame index -> (xyz, pose, label, conf), for the current window

    def frame_data(i: int):
        if i not in loaded:
            frame = dataset[i]
            outputs = cache.load(dataset.frame_ids[i], frame.num_points)
            if outputs is None:
                raise DataError(cache.path(dataset.frame_ids[i]),
                                f"frame {dataset.frame_ids[i]} is missing from the teacher cache; "
                                "run `zeroseg3d teacher` with the same config first")
            view = outputs["view_index"].numpy().astype(np.int64)
            xyz = frame.xyz.astype(np.float64)
            loaded[i] = (xyz, frame.pose, xyz[view], outputs["view_probs"].float().numpy())
        return loaded[i]

    for i in tqdm(todo, desc="temporal labels", unit="frame", disable=not progress):
        for stale in [k for k in loaded if k not in groups[i]]:
            del loaded[stale]
        xyz, pose, _, _ = frame_data(i)
        sources = []
        for j in groups[i]:
            _, other_pose, other_xyz, probs = frame_data(j)
            if j != i:
                if pose is None or other_pose is None:
                    continue
                moved = np.linalg.inv(pose) @ other_pose      # frame j's LiDAR -> frame i's LiDAR
                other_xyz = other_xyz @ moved[:3, :3].T + moved[:3, 3]
            sources.append((other_xyz, probs))
        hit, probs = vote(xyz, sources, config.voxel_size, config.min_confidence)
        out.save(dataset.frame_ids[i], point_tensors(len(xyz), hit, probs))
    return out
