"""Writing predictions: SemanticKITTI .label, nuScenes lidarseg .bin, coloured PLY. Atomic."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zeroseg3d.datasets.io import write_ply
from zeroseg3d.datasets.vocabulary import Vocabulary, normalize_name
from zeroseg3d.errors import ConfigError
from zeroseg3d.utils.atomic import atomic_write_bytes

FORMATS = ("label", "nuscenes", "ply")


def dataset_ids(class_names: list[str], labels: np.ndarray, vocabulary: Vocabulary) -> np.ndarray:
    """Predicted indices into ``class_names`` -> raw ids of a dataset vocabulary (inverse map)."""
    try:
        index = np.array([vocabulary.index(n) for n in class_names])
    except ConfigError:
        unknown = [n for n in class_names if normalize_name(n) not in {normalize_name(v) for v in vocabulary.names}]
        raise ConfigError(f"classes {unknown} are not {vocabulary.name} classes, so they have no "
                          f"{vocabulary.name} id; export as ply instead") from None
    return vocabulary.to_raw(index[labels])


def write_prediction(path_stem: Path, fmt: str, points: np.ndarray, labels: np.ndarray,
                     class_names: list[str], colors: np.ndarray) -> Path:
    if fmt == "label":
        path = path_stem.with_suffix(".label")
        atomic_write_bytes(path, dataset_ids(class_names, labels, Vocabulary.load("semantickitti"))
                           .astype(np.uint32).tobytes())
    elif fmt == "nuscenes":
        path = path_stem.with_name(path_stem.name + "_lidarseg.bin")
        atomic_write_bytes(path, dataset_ids(class_names, labels, Vocabulary.load("nuscenes"))
                           .astype(np.uint8).tobytes())
    elif fmt == "ply":
        path = path_stem.with_suffix(".ply")
        write_ply(path, points, colors=colors[labels], labels=labels.astype(np.int32))
    else:
        raise ConfigError(f"unknown output format {fmt!r}; use one of {', '.join(FORMATS)}")
    return path


def palette(class_names: list[str]) -> np.ndarray:
    """Colours of known classes (SemanticKITTI, nuScenes), distinct hues for new names."""
    known = {}
    for name in ("nuscenes", "semantickitti"):
        vocabulary = Vocabulary.load(name)
        known.update({normalize_name(n): c for n, c in zip(vocabulary.names, vocabulary.colors)})
    out = np.zeros((len(class_names), 3), np.uint8)
    for i, name in enumerate(class_names):
        if normalize_name(name) in known:
            out[i] = known[normalize_name(name)]
        else:
            hue = (i * 0.61803) % 1.0
            import colorsys

            out[i] = np.array(colorsys.hsv_to_rgb(hue, 0.75, 0.95)) * 255
    return out
