"""Writing predictions: SemanticKITTI .label, nuScenes lidarseg .bin, coloured PLY, LAS/LAZ. Atomic."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zeroseg3d.datasets.io import write_ply
from zeroseg3d.datasets.vocabulary import Vocabulary, normalize_name
from zeroseg3d.errors import ConfigError
from zeroseg3d.utils.atomic import atomic_write_bytes

LAS_FORMATS = ("las", "laz")
FORMATS = ("label", "nuscenes", "ply", *LAS_FORMATS)


FORMAT_VOCABULARY = {"label": "semantickitti", "nuscenes": "nuscenes"}


def dataset_classes(class_names: list[str], fmt: str) -> np.ndarray | None:
    """For a dataset format, each name's class in that dataset's vocabulary (by name or
    synonym: 'person' is nuScenes' pedestrian); ConfigError naming those without one, so that
    a user learns it before inference, not after. None for formats that keep any name."""
    if fmt not in FORMAT_VOCABULARY:
        return None
    vocabulary = Vocabulary.load(FORMAT_VOCABULARY[fmt])
    index = [vocabulary.index_of_name_or_synonym(n) for n in class_names]
    unknown = [n for n, i in zip(class_names, index) if i is None]
    if unknown:
        raise ConfigError(f"classes {unknown} are not {vocabulary.name} classes (nor a synonym of one), so they "
                          f"have no {vocabulary.name} id; export as ply instead")
    return np.array(index)


def dataset_raw_ids(class_names: list[str], fmt: str) -> np.ndarray | None:
    """The raw id in the format's dataset of each of ``class_names`` (the inverse map; a
    prediction's ids are ``raw_ids[labels]``), or None for formats that keep any name;
    ConfigError for names the format cannot store, so that a user learns it before inference."""
    from zeroseg3d.datasets.las import LAS_MAX_CLASSES

    if fmt in LAS_FORMATS and len(class_names) > LAS_MAX_CLASSES:
        raise ConfigError(f"{fmt} stores at most {LAS_MAX_CLASSES} classes (a one-byte classification), "
                          f"not {len(class_names)}; export as ply instead")
    index = dataset_classes(class_names, fmt)
    return None if index is None else Vocabulary.load(FORMAT_VOCABULARY[fmt]).to_raw(index)


def write_prediction(path_stem: Path, fmt: str, points: np.ndarray, labels: np.ndarray,
                     class_names: list[str], colors: np.ndarray, raw_ids: np.ndarray | None = None,
                     origin: np.ndarray | None = None, confidence: np.ndarray | None = None,
                     source: Path | None = None) -> Path:
    """One scan's prediction; ``raw_ids`` (from :func:`dataset_raw_ids`, computed once for a
    folder of scans) is looked up here when not given; PLY and LAS files of a georeferenced
    scan (its ``Frame.origin``) hold the file's own coordinates, and each point's
    ``confidence`` when given; a LAS file of a LAS/LAZ ``source`` (the scan's file) is a copy of
    it with the prediction in it (datasets.las.write_las)."""
    if raw_ids is None and fmt in FORMAT_VOCABULARY:
        raw_ids = dataset_raw_ids(class_names, fmt)
    # the suffix is added, not swapped: a stem with dots (a timestamp 1532402927.647951) keeps them
    if fmt == "label":
        path = path_stem.with_name(path_stem.name + ".label")
        atomic_write_bytes(path, raw_ids[labels].astype(np.uint32).tobytes())
    elif fmt == "nuscenes":
        path = path_stem.with_name(path_stem.name + "_lidarseg.bin")
        atomic_write_bytes(path, raw_ids[labels].astype(np.uint8).tobytes())
    elif fmt == "ply":
        path = path_stem.with_name(path_stem.name + ".ply")
        write_ply(path, points, colors=colors[labels], labels=labels.astype(np.int32), origin=origin,
                  confidence=confidence)
    elif fmt in LAS_FORMATS:
        from zeroseg3d.datasets.las import write_las

        path = path_stem.with_name(f"{path_stem.name}.{fmt}")
        write_las(path, points, labels, class_names, colors, confidence, origin, source)
    else:
        raise ConfigError(f"unknown output format {fmt!r}; use one of {', '.join(FORMATS)}")
    return path


MIN_COLOR_DISTANCE = 60.0   # RGB distance below which two classes of one picture look alike


def palette(class_names: list[str]) -> np.ndarray:
    """(C, 3) uint8 colours, distinguishable within the list: the official SemanticKITTI and
    nuScenes colours of their class names, and for any other name, or a class whose official
    colour is too close to an earlier one's (SemanticKITTI's person and traffic-sign are both
    red), the candidate colour farthest from all colours already given. Deterministic: the same
    list always gets the same colours."""
    import colorsys

    known = {}
    for name in ("nuscenes", "semantickitti"):
        vocabulary = Vocabulary.load(name)
        known.update({normalize_name(n): c for n, c in zip(vocabulary.names, vocabulary.colors)})
    candidates = np.array([colorsys.hsv_to_rgb(h / 48, s, v) for h in range(48) for s, v in
                           ((0.9, 0.95), (0.55, 0.9), (0.9, 0.6))]) * 255
    out = np.zeros((len(class_names), 3), np.float64)
    for i, name in enumerate(class_names):
        wanted = known.get(normalize_name(name))
        taken = out[:i]
        if wanted is not None and (i == 0 or np.linalg.norm(taken - wanted, axis=1).min() >= MIN_COLOR_DISTANCE):
            out[i] = wanted
        elif i == 0:
            out[i] = candidates[0]
        else:
            distance = np.linalg.norm(candidates[:, None] - taken[None], axis=2).min(1)
            out[i] = candidates[int(distance.argmax())]
    return np.rint(out).astype(np.uint8)
