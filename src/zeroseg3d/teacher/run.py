"""Running the teacher over a dataset split into its cache, and the pseudo-label report."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zeroseg3d.datasets.base import FrameDataset
from zeroseg3d.datasets.vocabulary import Split
from zeroseg3d.errors import DataError
from zeroseg3d.metrics import PER_FRAME, confusion_matrix, format_table, json_safe, summarize_with_intervals
from zeroseg3d.teacher.cache import TeacherCache
from zeroseg3d.teacher.teacher import Teacher
from zeroseg3d.utils.atomic import atomic_write_text


@dataclass
class CacheStats:
    computed: int = 0
    reused: int = 0


def shard_from_env() -> tuple[int, int]:
    """(index, count) of this process under torchrun, else (0, 1)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def fill_cache(teacher: Teacher, dataset: FrameDataset, cache: TeacherCache,
               shard: tuple[int, int] = (0, 1), progress: bool = True) -> CacheStats:
    """Compute the frames of this shard that the cache lacks (or holds stale or damaged)."""
    from tqdm import tqdm

    index, count = shard
    stats = CacheStats()
    frames = range(index, len(dataset), count)
    for i in tqdm(frames, desc=f"teacher {index + 1}/{count}" if count > 1 else "teacher",
                  unit="frame", disable=not progress):
        frame_id = dataset.frame_ids[i]
        if cache.load(frame_id) is not None:
            stats.reused += 1
            continue
        frame = dataset[i]
        cache.save(frame_id, teacher.frame_outputs(frame))
        stats.computed += 1
    return stats


def teacher_confusions(dataset: FrameDataset, cache: TeacherCache,
                       label_key: str = "point_label") -> tuple[np.ndarray, np.ndarray]:
    """Per-frame confusion matrices of the cached teacher labels (``label_key``) against 3D
    ground truth: over the full scan (F, C, C+1), whose last column counts the points the
    teacher gives no label, and over the points it labels (F, C, C)."""
    c = dataset.vocabulary.num_classes
    full = np.zeros((len(dataset), c, c + 1), np.int64)
    view = np.zeros((len(dataset), c, c), np.int64)
    for i, frame_id in enumerate(dataset.frame_ids):
        frame = dataset[i]
        if frame.labels is None:
            continue
        outputs = cache.load(frame_id, frame.num_points)
        if outputs is None or label_key not in outputs:
            raise DataError(cache.path(frame_id), f"frame {frame_id} has no {label_key} in the teacher cache")
        predicted = outputs[label_key].numpy().astype(np.int64)
        valid = frame.labels >= 0
        full[i] = confusion_matrix(np.where(predicted >= 0, predicted, c), frame.labels, c + 1)[:c]
        labelled = valid & (predicted >= 0)
        view[i] = confusion_matrix(predicted[labelled], frame.labels[labelled], c)
    return full, view


def pseudo_label_quality(dataset: FrameDataset, cache: TeacherCache, split: Split,
                         label_key: str = "point_label") -> dict:
    """Point-level IoU of the teacher's labels against 3D ground truth on the points it labels
    (inside the camera view), with bootstrap intervals over streets; per-frame matrices under
    ``per_frame`` (full scan and labelled points)."""
    full, view = teacher_confusions(dataset, cache, label_key)
    units = dataset.frame_sequences
    points = int(view.sum())
    if points == 0:
        raise DataError(cache.root, "no labelled points inside the camera view: nothing to report")
    vocabulary = dataset.vocabulary
    report = summarize_with_intervals(view, units, vocabulary.names, split.seen, split.unseen)
    report["full"] = summarize_with_intervals(full, units, vocabulary.names, split.seen, split.unseen)
    report["points_in_view"] = points
    report["unseen_classes"] = [vocabulary.names[i] for i in split.unseen]
    report[PER_FRAME] = {"frame_ids": list(dataset.frame_ids), "units": units, "full": full, "fov": view}
    return report


def write_quality(report: dict, directory: Path, name: str) -> str:
    atomic_write_text(directory / f"{name}.json",
                      json.dumps(json_safe({k: v for k, v in report.items() if k != PER_FRAME}), indent=2))
    return format_table(report, report["unseen_classes"])
