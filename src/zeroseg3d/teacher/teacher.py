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
from zeroseg3d.geometry.config import PairingConfig
from zeroseg3d.geometry.projection import pair_points
from zeroseg3d.teacher.config import TeacherConfig
from zeroseg3d.teacher.cache import pair_tensors, point_tensors
from zeroseg3d.teacher.dense import DenseCLIP, cosine_logits, key_smooth, prompt_denoise, sample_grid
from zeroseg3d.teacher.loading import load_clip
from zeroseg3d.teacher.text import encode_classes, templates_for, text_key
from zeroseg3d.utils.device import resolve_device

CACHE_FORMAT = 3


def _text_path(identity: str, synonyms, templates, cache_dir: str):
    from pathlib import Path

    return Path(cache_dir) / "text" / f"{text_key(identity, synonyms, templates)}.safetensors"


def _read_text(path, classes: int) -> torch.Tensor | None:
    from safetensors.torch import load_file

    if not path.is_file():
        return None
    try:
        text = load_file(str(path))["text"]
    except Exception:  # a damaged file is recomputed
        return None
    return text if text.ndim == 2 and text.shape[0] == classes and torch.isfinite(text).all() else None


def cached_text_embeddings(loaded, synonyms, templates, cache_dir: str, device: str) -> torch.Tensor:
    """(C, D) prompt-ensemble embeddings, kept in cache_dir/text/<hash>.safetensors, keyed by
    the weights, every class's names and the templates."""
    from safetensors.torch import save

    from zeroseg3d.utils.atomic import atomic_write_bytes

    path = _text_path(loaded.identity, synonyms, templates, cache_dir)
    text = _read_text(path, len(synonyms))
    if text is not None:
        return text.to(device)
    text = encode_classes(loaded.model, loaded.tokenizer, synonyms, templates, device).float()
    atomic_write_bytes(path, save({"text": text.cpu().contiguous()}))
    return text


def _key(identity: str, synonyms, templates, config: TeacherConfig, pairing: PairingConfig) -> str:
    blob = json.dumps({"format": CACHE_FORMAT, "weights": identity, "text": text_key(identity, synonyms, templates),
                       "settings": config.output_settings(), "pairing": asdict(pairing)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def teacher_outputs_key(config: TeacherConfig, vocabulary: Vocabulary,
                        pairing: PairingConfig | None = None) -> tuple[str, str, torch.Tensor | None]:
    """The teacher cache's key, the weights' identity (teacher.loading.weights_identity, part of
    the key) and the cached (C, D) text embeddings (None when not cached), without loading the
    CLIP model: what training needs once the teacher stage has run."""
    from zeroseg3d.teacher.loading import weights_identity

    identity = weights_identity(config)
    templates = templates_for(config.templates)
    synonyms = [vocabulary.synonyms(i) for i in range(vocabulary.num_classes)]
    text = _read_text(_text_path(identity, synonyms, templates, config.cache_dir), len(synonyms))
    return _key(identity, synonyms, templates, config, pairing or PairingConfig()), identity, text


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
        self.key = _key(self.loaded.identity, synonyms, templates, config, self.pairing)

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
        """point_label (N,) int16 (-1: no view) and point_conf (N,) fp16; view_index (M,) int32,
        the points some camera sees, and view_probs (M, C) fp16, their class probabilities
        (teacher.cache.point_labels); the pairing and the patch features the pairs read
        (teacher.cache.pair_tensors)."""
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
        tensors = pair_tensors(pairing, frame.cameras, [grid.permute(1, 2, 0).half() for grid, _ in outputs])
        for index, (camera, (grid, logits)) in enumerate(zip(frame.cameras, outputs)):
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
