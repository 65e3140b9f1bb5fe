"""Running the teacher over a dataset split into its cache, and the pseudo-label report."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zeroseg3d.datasets.base import FrameDataset
from zeroseg3d.datasets.vocabulary import Split
from zeroseg3d.metrics import confusion_matrix, format_table, json_safe, summarize
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


def pseudo_label_quality(dataset: FrameDataset, cache: TeacherCache, split: Split) -> dict:
    """Point-level IoU of the teacher's labels against 3D ground truth inside the camera view."""
    vocabulary = dataset.vocabulary
    matrix = np.zeros((vocabulary.num_classes,) * 2, dtype=np.int64)
    points = 0
    for i, frame_id in enumerate(dataset.frame_ids):
        frame = dataset[i]
        if frame.labels is None:
            continue
        outputs = cache.load(frame_id, frame.num_points)
        if outputs is None:
            raise RuntimeError(f"frame {frame_id} is not in the teacher cache {cache.root}")
        predicted = outputs["point_label"].numpy().astype(np.int64)
        in_view = (predicted >= 0) & (frame.labels >= 0)
        matrix += confusion_matrix(predicted[in_view], frame.labels[in_view], vocabulary.num_classes)
        points += int(in_view.sum())
    if points == 0:
        raise RuntimeError("no labelled points inside the camera view: nothing to report")
    report = summarize(matrix, vocabulary.names, split.seen, split.unseen)
    report["points_in_view"] = points
    report["unseen_classes"] = [vocabulary.names[i] for i in split.unseen]
    return report


def write_quality(report: dict, directory: Path, name: str) -> str:
    atomic_write_text(directory / f"{name}.json", json.dumps(json_safe(report), indent=2))
    return format_table(report, report["unseen_classes"])
