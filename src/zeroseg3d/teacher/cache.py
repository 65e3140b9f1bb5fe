"""The teacher's on-disk cache: one safetensors file per frame, written atomically.

A file is trusted only when it parses, its key (weights, prompts, settings) is the current
one, its checksum matches its tensors and its point count matches the frame; anything else is
recomputed. safetensors cannot execute code.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from zeroseg3d.utils.atomic import atomic_write_bytes


def _checksum(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].contiguous().view(torch.uint8).numpy().tobytes()
                      if tensors[name].numel() else b"")
    return digest.hexdigest()


class TeacherCache:
    def __init__(self, root: str | Path, key: str):
        self.root = Path(root)
        self.key = key

    def path(self, frame_id: str) -> Path:
        return self.root / "frames" / (frame_id.replace("/", "__") + ".safetensors")

    def load(self, frame_id: str, num_points: int | None = None) -> dict[str, torch.Tensor] | None:
        """The cached outputs of a frame, or None when missing, stale or corrupted."""
        from safetensors import safe_open

        path = self.path(frame_id)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = handle.metadata() or {}
                if meta.get("key") != self.key or meta.get("frame_id") != frame_id:
                    return None
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        except Exception:  # any parse failure means a damaged file: recompute it
            return None
        if meta.get("checksum") != _checksum(tensors):
            return None
        if num_points is not None and tensors.get("point_label", torch.empty(0)).shape[0] != num_points:
            return None
        return tensors

    def save(self, frame_id: str, tensors: dict[str, torch.Tensor]) -> Path:
        from safetensors.torch import save

        meta = {"key": self.key, "frame_id": frame_id, "checksum": _checksum(tensors)}
        path = self.path(frame_id)
        atomic_write_bytes(path, save({k: v.contiguous() for k, v in tensors.items()}, metadata=meta))
        return path


def point_tensors(num_points: int, view: np.ndarray, probs: np.ndarray) -> dict[str, torch.Tensor]:
    """The per-point entries of a cached frame from the class probabilities ``probs`` (M, C)
    of the points ``view`` (M,): view_index, view_probs, and the argmax point_label (N,)
    (-1 where unseen) with its probability point_conf (N,)."""
    label = np.full(num_points, -1, np.int16)
    conf = np.zeros(num_points, np.float16)
    if len(view):
        label[view] = probs.argmax(1)
        conf[view] = probs.max(1)
    return {"point_label": torch.from_numpy(label), "point_conf": torch.from_numpy(conf),
            "view_index": torch.from_numpy(np.asarray(view, np.int32)),
            "view_probs": torch.from_numpy(np.asarray(probs, np.float16))}


def point_labels(outputs: dict[str, torch.Tensor], among: np.ndarray | None = None,
                 min_mass: float = 0.0, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(N,) labels (-1: none) and confidences of a cached frame's points. With ``among`` (class
    indices), the most probable of those classes, its probability renormalised over them,
    for points whose probability mass on them is at least ``min_mass``: where the 3D labels
    say a point is none of the other classes, the teacher only has to tell these apart.
    ``weights`` (one per class of ``among``) multiply the probabilities first (``class_prior``)."""
    label = outputs["point_label"].numpy().astype(np.int64)
    conf = outputs["point_conf"].float().numpy()
    if among is None:
        return label, conf
    among = np.asarray(among, np.int64)
    view = outputs["view_index"].numpy().astype(np.int64)
    probs = outputs["view_probs"].float().numpy()[:, among]
    keep = probs.sum(1) >= max(min_mass, 1e-6)
    if weights is not None:
        probs = probs * weights
    best = probs.argmax(1)
    label, conf = np.full_like(label, -1), np.zeros_like(conf)
    label[view[keep]] = among[best[keep]]
    conf[view[keep]] = probs[keep, best[keep]] / probs[keep].sum(1)
    return label, conf


def class_prior(frames, cache: TeacherCache, among: np.ndarray, seen, min_mass: float = 0.0,
                max_frames: int = 200) -> np.ndarray:
    """(len(among),) the teacher's mean probability of each class of ``among`` (renormalised
    over them) on the points the 3D labels leave unlabelled (none of the ``seen`` classes) that
    a camera sees, over up to ``max_frames`` frames spread evenly over ``frames`` (each must be
    in ``cache``: DataError otherwise). The teacher
    favours some classes everywhere (on the world a truck's 0.65 against a traffic sign's
    0.02); dividing by a power of this prior gives the rare ones back their labels."""
    among = np.asarray(among, np.int64)
    total, count = np.zeros(len(among)), 0
    for index in np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).astype(int)):
        frame = frames[int(index)]
        outputs = cache.load(frames.frame_ids[int(index)], frame.num_points)
        if outputs is None:
            from zeroseg3d.errors import DataError

            raise DataError(cache.path(frame.frame_id), f"frame {frame.frame_id} is missing from the teacher "
                            "labels (or stale); run `zeroseg3d teacher` with the same config first")
        view = outputs["view_index"].numpy().astype(np.int64)
        probs = outputs["view_probs"].float().numpy()[:, among]
        mass = probs.sum(1)
        unlabelled = (~np.isin(frame.labels, list(seen)) if frame.labels is not None
                      else np.ones(frame.num_points, bool))[view]
        rows = unlabelled & (mass >= max(min_mass, 1e-6))
        total += (probs[rows] / mass[rows, None]).sum(0)
        count += int(rows.sum())
    return total / count if count else np.full(len(among), 1.0 / len(among))


def prior_weights(prior: np.ndarray, power: float) -> np.ndarray:
    """Class weights for ``point_labels``: the prior (``class_prior``) to the power -``power``."""
    return np.maximum(prior, 1e-6) ** -power
