"""The teacher's on-disk cache: one safetensors file per frame, written atomically.

A file is trusted only when it parses, its key (weights, prompts, settings) is the current
one, its checksum matches its tensors and its point count matches the frame; anything else is
recomputed. safetensors cannot execute code.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

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
