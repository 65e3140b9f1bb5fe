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
                 min_mass: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(N,) labels (-1: none) and confidences of a cached frame's points. With ``among`` (class
    indices), the most probable of those classes, its probability renormalised over them,
    for points whose probability mass on them is at least ``min_mass``: where the 3D labels
    say a point is none of the other classes, the teacher only has to tell these apart."""
    label = outputs["point_label"].numpy().astype(np.int64)
    conf = outputs["point_conf"].float().numpy()
    if among is None:
        return label, conf
    among = np.asarray(among, np.int64)
    view = outputs["view_index"].numpy().astype(np.int64)
    probs = outputs["view_probs"].float().numpy()[:, among]
    mass = probs.sum(1)
    best = probs.argmax(1)
    keep = mass >= max(min_mass, 1e-6)
    label, conf = np.full_like(label, -1), np.zeros_like(conf)
    label[view[keep]] = among[best[keep]]
    conf[view[keep]] = probs[keep, best[keep]] / mass[keep]
    return label, conf
