"""The teacher applied to frames: per-camera patch grids and per-point pseudo labels."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import numpy as np
import torch

from zeroseg3d.datasets.frame import Frame
from zeroseg3d.datasets.vocabulary import Vocabulary
from zeroseg3d.errors import DataError
from zeroseg3d.geometry.projection import PairingConfig, pair_points
from zeroseg3d.teacher.config import TeacherConfig
from zeroseg3d.teacher.cache import point_tensors
from zeroseg3d.teacher.dense import DenseCLIP, cosine_logits, key_smooth, prompt_denoise, sample_grid
from zeroseg3d.teacher.loading import load_clip, resolve_device
from zeroseg3d.teacher.text import encode_classes, templates_for, text_key

CACHE_FORMAT = 2
# Settings that change the teacher's outputs; the rest (batch size, device) do not.
OUTPUT_SETTINGS = ("readout", "value_residual", "short_side", "scales", "window", "window_stride",
                   "sliding", "templates", "prompt_denoise", "key_smoothing", "multi_camera")


def cached_text_embeddings(loaded, synonyms, templates, cache_dir: str, device: str) -> torch.Tensor:
    """(C, D) prompt-ensemble embeddings, kept in cache_dir/text/<hash>.safetensors, keyed by
    the weights, every class's names and the templates."""
    from pathlib import Path

    from safetensors.torch import load_file, save

    from zeroseg3d.utils.atomic import atomic_write_bytes

    path = Path(cache_dir) / "text" / f"{text_key(loaded.identity, synonyms, templates)}.safetensors"
    if path.is_file():
        try:
            text = load_file(str(path))["text"]
            if text.shape[0] == len(synonyms):
                return text.to(device)
        except Exception:  # a damaged file is recomputed
            pass
    text = encode_classes(loaded.model, loaded.tokenizer, synonyms, templates, device).float()
    atomic_write_bytes(path, save({"text": text.cpu().contiguous()}))
    return text


class Teacher:
    def __init__(self, config: TeacherConfig, vocabulary: Vocabulary,
                 pairing: PairingConfig | None = None):
        if config.multi_camera not in ("confident", "nearest"):
            from zeroseg3d.errors import ConfigError

            raise ConfigError(f"teacher.multi_camera must be confident or nearest, got {config.multi_camera!r}")
        self.config = config
        self.vocabulary = vocabulary
        self.pairing = pairing or PairingConfig()
        self.device = resolve_device(config.device)
        self.loaded = load_clip(config, self.device)
        self.dense = DenseCLIP(self.loaded, config, self.device)
        templates = templates_for(config.templates)
        synonyms = [vocabulary.synonyms(i) for i in range(vocabulary.num_classes)]
        self.text = cached_text_embeddings(self.loaded, synonyms, templates, config.cache_dir, self.device)
        self.logit_scale = float(self.loaded.model.logit_scale.exp())
        settings = {k: getattr(config, k) for k in OUTPUT_SETTINGS}
        blob = json.dumps({"format": CACHE_FORMAT, "weights": self.loaded.identity,
                           "text": text_key(self.loaded.identity, synonyms, templates),
                           "settings": settings, "pairing": asdict(self.pairing)}, sort_keys=True)
        self.key = hashlib.sha256(blob.encode()).hexdigest()[:20]

    @property
    def embed_dim(self) -> int:
        return int(self.text.shape[1])

    @torch.no_grad()
    def image_outputs(self, images: list[np.ndarray]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per image: (D, h, w) features and (C, h, w) logits over the vocabulary."""
        out: list = [None] * len(images)
        by_size: dict[tuple, list[int]] = {}
        for index, image in enumerate(images):
            by_size.setdefault(image.shape, []).append(index)
        for indices in by_size.values():
            for start in range(0, len(indices), self.config.batch_size):
                chunk = indices[start:start + self.config.batch_size]
                grid = self.dense.features(np.stack([images[i] for i in chunk]))
                logits = cosine_logits(grid, self.text.to(grid.device), self.logit_scale)
                logits = prompt_denoise(logits, self.config.prompt_denoise)
                if self.config.key_smoothing:
                    logits = key_smooth(logits, grid)
                for j, i in enumerate(chunk):
                    out[i] = (grid[j].cpu(), logits[j].cpu())
        return out

    def frame_outputs(self, frame: Frame) -> dict[str, torch.Tensor]:
        """features/<k> (h, w, D) fp16 per camera; point_label (N,) int16 (-1: no view) and
        point_conf (N,) fp16; view_index (M,) int32, the points some camera sees, and
        view_probs (M, C) fp16, their class probabilities (see teacher.cache.point_labels)."""
        images = []
        for camera in frame.cameras:
            image = camera.load_image()
            if image is None:
                raise DataError(frame.source, f"camera {camera.name} has no image; the teacher needs images")
            images.append(image)
        outputs = self.image_outputs(images)
        pairing = pair_points(frame.xyz, frame.cameras, self.pairing)
        n = frame.num_points
        best = np.full(n, -np.inf)
        probabilities = np.zeros((n, len(self.vocabulary.names)), np.float32)
        tensors: dict[str, torch.Tensor] = {}
        for index, (camera, (grid, logits)) in enumerate(zip(frame.cameras, outputs)):
            tensors[f"features/{index}"] = grid.permute(1, 2, 0).half().contiguous()
            pairs = pairing.select(pairing.cam_idx == index)
            if len(pairs) == 0:
                continue
            # the per-pixel prediction at the point's pixel: logits upsampled bilinearly and
            # read at the pixel centre
            pixels = torch.from_numpy(np.rint(pairs.uv).astype(np.float32))
            probs = sample_grid(logits, pixels, camera.image_size).softmax(dim=1).numpy()
            score = probs.max(1) if self.config.multi_camera == "confident" else -pairs.depth
            better = score > best[pairs.point_idx]
            rows = pairs.point_idx[better]
            best[rows] = score[better]
            probabilities[rows] = probs[better]
        view = np.flatnonzero(np.isfinite(best))
        tensors.update(point_tensors(n, view, probabilities[view]))
        return tensors
