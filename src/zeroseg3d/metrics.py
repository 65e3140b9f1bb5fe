"""Segmentation metrics: confusion matrices, IoU, mIoU over class groups, hIoU.

Classes absent from both prediction and ground truth have no IoU (NaN) and are left out of
every mean, rather than counted as 0 or 100.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def confusion_matrix(prediction: np.ndarray, target: np.ndarray, num_classes: int,
                     ignore_index: int = -1) -> np.ndarray:
    """(C, C) int64 counts, rows = ground truth, columns = prediction; points whose target is
    ``ignore_index`` are skipped. Every other point needs a prediction in 0..C-1."""
    prediction = np.asarray(prediction, dtype=np.int64).ravel()
    target = np.asarray(target, dtype=np.int64).ravel()
    if prediction.shape != target.shape:
        raise ValueError(f"prediction and target differ in size: {prediction.shape} vs {target.shape}")
    valid = target != ignore_index
    target, prediction = target[valid], prediction[valid]
    for name, values in (("target", target), ("prediction", prediction)):
        if ((values < 0) | (values >= num_classes)).any():
            raise ValueError(f"{name} labels outside 0..{num_classes - 1}")
    return np.bincount(target * num_classes + prediction,
                       minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_per_class(matrix: np.ndarray) -> np.ndarray:
    """(C,) IoU in [0, 1]; NaN where a class is absent from prediction and ground truth.

    ``matrix`` is (C, C), or (C, C+1) whose last column counts points left without a
    prediction (misses of their class, false positives of none)."""
    c = matrix.shape[0]
    tp = np.diag(matrix[:, :c]).astype(np.float64)
    union = matrix.sum(1) + matrix[:, :c].sum(0) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def _mean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean() * 100) if len(values) else float("nan")


def harmonic_mean(seen: float, unseen: float) -> float:
    if np.isnan(seen) or np.isnan(unseen):
        return float("nan")
    return 0.0 if seen + unseen == 0 else 2 * seen * unseen / (seen + unseen)


def summarize(matrix: np.ndarray, names: Sequence[str],
              seen: Sequence[int], unseen: Sequence[int]) -> dict:
    """mIoU over all, seen and unseen classes, hIoU, and per-class IoU, all in percent."""
    iou = iou_per_class(matrix)
    miou_seen = _mean(iou[list(seen)]) if len(seen) else float("nan")
    miou_unseen = _mean(iou[list(unseen)]) if len(unseen) else float("nan")
    return {
        "miou": _mean(iou),
        "miou_seen": miou_seen,
        "miou_unseen": miou_unseen,
        "hiou": harmonic_mean(miou_seen, miou_unseen),
        "per_class": {name: (None if np.isnan(v) else float(v * 100)) for name, v in zip(names, iou)},
    }


def json_safe(value):
    """NaN (an undefined mean, e.g. seen mIoU without seen classes) -> None, for strict JSON."""
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def format_table(summary: dict, unseen_names: Sequence[str] = ()) -> str:
    lines = [f"{'class':<20} {'IoU':>7}"]
    for name, value in summary["per_class"].items():
        mark = " (unseen)" if name in unseen_names else ""
        lines.append(f"{name:<20} {'-' if value is None else f'{value:6.1f}':>7}{mark}")
    lines.append(f"{'mIoU':<20} {summary['miou']:7.1f}")  # NaN prints as nan: an undefined mean
    lines.append(f"{'mIoU seen':<20} {summary['miou_seen']:7.1f}")
    lines.append(f"{'mIoU unseen':<20} {summary['miou_unseen']:7.1f}")
    lines.append(f"{'hIoU':<20} {summary['hiou']:7.1f}")
    return "\n".join(lines)
