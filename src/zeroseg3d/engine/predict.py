"""Inference API: a trained student segments any scan into any list of class names.

    from zeroseg3d.engine.predict import Segmenter
    segmenter = Segmenter.from_checkpoint("runs/world/checkpoints/self.pt")
    result = segmenter.predict(points, classes=["car", "person", "fire hydrant"])
    result.labels, result.scores, result.class_names
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from zeroseg3d.datasets.frame import Frame
from zeroseg3d.datasets.pipeline import SampleBuilder, collate
from zeroseg3d.datasets.vocabulary import Vocabulary, normalize_name
from zeroseg3d.engine.checkpoint import CheckpointError, load_checkpoint
from zeroseg3d.engine.evaluate import to_device
from zeroseg3d.errors import ConfigError, DataError


@dataclass
class Prediction:
    labels: np.ndarray        # (N,) indices into class_names
    scores: np.ndarray        # (N,) softmax probability of the predicted class
    class_names: list[str]


def build_model_from_checkpoint(state: dict, path, config=None):
    """The student described by a checkpoint's own config (or ``config``, that config with
    overrides), with its weights."""
    from zeroseg3d.config import load_config_text
    from zeroseg3d.models.segmentor import ZeroShotSegmentor

    if config is None:
        config = load_config_text(state["config"], f"{path} (stored config)")
    model = ZeroShotSegmentor(config.model, int(state["embed_dim"]))
    missing, unexpected = model.load_state_dict(state["model"], strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not fit the stored backbone config "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return config, model


class Segmenter:
    def __init__(self, model, config, vocabulary: list[str], text_embeddings: torch.Tensor, device: str = "cpu",
                 teacher_identity: str | None = None):
        self.model = model.to(device).eval()
        self.teacher_identity = teacher_identity   # the CLIP weights the student was trained with
        self.config = config
        self.vocabulary = list(vocabulary)
        self.text_embeddings = text_embeddings.float()
        self.device = device
        self.builder = SampleBuilder(config.data.voxel_size, config.data.pairing, augment=None)
        self._clip = None
        self._text_cache: dict[tuple, torch.Tensor] = {tuple(self.vocabulary): self.text_embeddings}

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto") -> "Segmenter":
        from zeroseg3d.teacher.loading import resolve_device

        state = load_checkpoint(path)
        config, model = build_model_from_checkpoint(state, path)
        text = state["text_embeddings"]
        if text.shape[1] != model.embed_dim:
            raise CheckpointError(f"{path}: text embeddings of dimension {text.shape[1]} do not match the "
                                  f"model's {model.embed_dim}")
        identity = state.get("teacher_identity")
        return cls(model, config, state["vocabulary"], text, resolve_device(device),
                   identity if isinstance(identity, str) else None)

    # -- vocabularies ---------------------------------------------------------------------
    def text_for(self, classes: Sequence[str] | None) -> tuple[list[str], torch.Tensor]:
        """Class names and their unit text embeddings; new names go through the CLIP text
        tower named in the checkpoint's config (its weights must be reachable)."""
        if classes is None:
            return self.vocabulary, self.text_embeddings
        classes = [c.strip() for c in classes if c.strip()]
        if not classes:
            raise ConfigError("the class list is empty")
        seen: dict[str, str] = {}
        for name in classes:
            if normalize_name(name) in seen:
                raise ConfigError(f"class {name!r} is listed twice (as {seen[normalize_name(name)]!r} too)")
            seen[normalize_name(name)] = name
        key = tuple(classes)
        if key not in self._text_cache:
            self._text_cache[key] = self._encode(classes)
        return classes, self._text_cache[key]

    def _encode(self, classes: list[str]) -> torch.Tensor:
        from zeroseg3d.config import build_vocabulary
        from zeroseg3d.teacher.loading import load_clip
        from zeroseg3d.teacher.text import encode_classes, templates_for

        if self._clip is None:
            self._clip = load_clip(self._teacher_config(), "cpu")
        known = build_vocabulary(self.config.data)
        lookup = {normalize_name(n): known.synonyms(i) for i, n in enumerate(known.names)}
        synonyms = [lookup.get(normalize_name(c), (c,)) for c in classes]
        text = encode_classes(self._clip.model, self._clip.tokenizer, synonyms,
                              templates_for(self.config.teacher.templates))
        if text.shape[1] != self.model.embed_dim:
            raise CheckpointError(f"the text tower gives {text.shape[1]}-d embeddings, the student "
                                  f"was trained for {self.model.embed_dim}-d: use the teacher it was trained with")
        return text.float()

    def _teacher_config(self):
        """The stored teacher config with what a file must never decide taken out: weights load
        without unpickling, and only when they are the ones the student was trained with."""
        from dataclasses import replace

        from zeroseg3d.teacher.loading import weights_identity

        config = replace(self.config.teacher, allow_unsafe_pickle=False)
        if self.teacher_identity is not None:
            found = weights_identity(config)
            if found != self.teacher_identity:
                raise CheckpointError(
                    f"the teacher weights the checkpoint's config names ({found}) are not the ones the "
                    f"student was trained with ({self.teacher_identity}); new class names need those")
        return config

    # -- prediction -----------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, points: np.ndarray | Frame, classes: Sequence[str] | None = None) -> Prediction:
        frame = points if isinstance(points, Frame) else _frame_from_array(points)
        names, text = self.text_for(classes)
        sample = self.builder(frame) if frame.cameras else self._sample_without_pairing(frame)
        batch = to_device(collate([sample]), self.device)
        logits = self.model(batch, text.to(self.device))["logits"].float()
        scores, labels = logits.softmax(dim=1).max(dim=1)
        return Prediction(labels.cpu().numpy(), scores.cpu().numpy(), names)

    def _sample_without_pairing(self, frame: Frame):
        return self.builder(Frame(frame.frame_id, frame.points))


def _frame_from_array(points: np.ndarray) -> Frame:
    from zeroseg3d.datasets.io import check_points

    points = np.asarray(points, dtype=np.float32)
    if points.ndim == 2 and points.shape[1] == 3:
        points = np.concatenate([points, np.zeros((len(points), 1), np.float32)], axis=1)
    return Frame("array", check_points(points, "points array"))


def load_vocabulary_file(path: str | Path) -> list[str]:
    """Class names from a vocabulary YAML, or a text file with one name per line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "vocabulary file not found")
    if path.suffix in (".yaml", ".yml"):
        return Vocabulary.load(path).names
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
