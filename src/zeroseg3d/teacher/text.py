"""Text side of the teacher: prompt ensembles over class synonyms."""

from __future__ import annotations

import hashlib
import json
from typing import Sequence

TEMPLATES = {
    # Driving scenes seen from a car: street context, distance, blur and partial views.
    "driving": [
        "a photo of a {}.",
        "a photo of a {} on a street.",
        "a {} in a driving scene.",
        "a blurry photo of a {}.",
        "a close-up photo of a {}.",
        "a photo of a {} in the distance.",
        "a cropped photo of a {}.",
        "a street view image with a {}.",
    ],
    "plain": ["a photo of a {}."],
    "bare": ["{}"],
}


def templates_for(name: str) -> list[str]:
    from zeroseg3d.errors import ConfigError

    if name not in TEMPLATES:
        raise ConfigError(f"unknown template set {name!r}; known: {', '.join(TEMPLATES)}")
    return TEMPLATES[name]


def class_prompts(synonyms: Sequence[Sequence[str]], templates: Sequence[str]) -> list[list[str]]:
    """Per class, every synonym through every template."""
    return [[t.format(name) for name in names for t in templates] for names in synonyms]


def text_key(identity: str, synonyms: Sequence[Sequence[str]], templates: Sequence[str]) -> str:
    blob = json.dumps([identity, [list(s) for s in synonyms], list(templates)])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def encode_classes(model, tokenizer, synonyms: Sequence[Sequence[str]], templates: Sequence[str],
                   device: str = "cpu"):
    """(C, D) unit text embeddings: the normalised mean of each class's normalised prompts."""
    import torch
    import torch.nn.functional as F

    out = []
    with torch.no_grad():
        for prompts in class_prompts(synonyms, templates):
            tokens = tokenizer(prompts).to(device)
            embedding = F.normalize(model.encode_text(tokens).float(), dim=-1)
            out.append(F.normalize(embedding.mean(0), dim=-1))
    return torch.stack(out)
