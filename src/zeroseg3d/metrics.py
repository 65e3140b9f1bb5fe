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
    """A text table of per-class IoU and the means, with their bootstrap intervals and support
    where the summary has them."""
    intervals = summary.get("interval", {})
    support_of = summary.get("support", {})

    def cell(value, bounds) -> str:
        text = "-" if value is None or np.isnan(value) else f"{value:6.1f}"
        return text + (f"  [{bounds[0]:5.1f}, {bounds[1]:5.1f}]" if bounds else "")

    lines = [f"{'class':<20} {'IoU':>7}" + ("  95% interval" if intervals else "")]
    for name, value in summary["per_class"].items():
        mark = " (unseen)" if name in unseen_names else ""
        if name in support_of and not support_of[name]["measurable"]:
            mark += f" (too few points to measure: {support_of[name]['points']} in {support_of[name]['units']} streets)"
        lines.append(f"{name:<20} {cell(value, intervals.get('per_class', {}).get(name)):>7}{mark}")
    for key, label in (("miou", "mIoU"), ("miou_seen", "mIoU seen"), ("miou_unseen", "mIoU unseen"), ("hiou", "hIoU")):
        lines.append(f"{label:<20} {cell(summary[key], intervals.get(key))}")  # NaN prints as -: undefined
    return "\n".join(lines)


# -- uncertainty ------------------------------------------------------------------------------
# A class is reported as measurable only with at least this many ground-truth points spread
# over at least this many resampling units (streets): below that one object decides its IoU.
PER_FRAME = "per_frame"   # key of the per-frame confusion matrices in a metrics dict (saved as .npz)
SCORES = ("miou", "miou_seen", "miou_unseen", "hiou")
MIN_SUPPORT_POINTS = 1000
MIN_SUPPORT_UNITS = 3


def _group(matrices: np.ndarray, units: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Per-frame matrices summed per unit (the frame's sequence: its street)."""
    names = sorted(set(units))
    index = {u: i for i, u in enumerate(names)}
    grouped = np.zeros((len(names),) + matrices.shape[1:], np.int64)
    np.add.at(grouped, [index[u] for u in units], matrices)
    return names, grouped


def _nanmean(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis ignoring NaN, in percent; NaN where every value is NaN."""
    count = (~np.isnan(values)).sum(-1)
    total = np.nansum(values, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, 100 * total / np.maximum(count, 1), np.nan)


def resampled_scores(matrices: np.ndarray, units: Sequence[str], seen: Sequence[int],
                     unseen: Sequence[int], samples: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """Scores of ``samples`` bootstrap resamples of the units (one per frame: its street) behind
    per-frame confusion matrices (F, C, C[+1]): miou, miou_seen, miou_unseen, hiou (S,) and iou (S, C),
    all in percent. The same seed resamples the same units, so two stacks over the same frames
    give paired samples (differences between methods)."""
    _, grouped = _group(matrices, units)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(grouped), size=(samples, len(grouped)))
    weights = np.stack([np.bincount(p, minlength=len(grouped)) for p in picks]).astype(np.float64)
    resampled = np.einsum("sg,gij->sij", weights, grouped.astype(np.float64))
    c = resampled.shape[1]
    tp = np.einsum("sii->si", resampled[:, :, :c])
    union = resampled.sum(2) + resampled[:, :, :c].sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    seen_score = _nanmean(iou[:, list(seen)]) if len(seen) else np.full(samples, np.nan)
    unseen_score = _nanmean(iou[:, list(unseen)]) if len(unseen) else np.full(samples, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        hiou = np.where(seen_score + unseen_score > 0, 2 * seen_score * unseen_score / (seen_score + unseen_score),
                        np.where(np.isnan(seen_score + unseen_score), np.nan, 0.0))
    return {"miou": _nanmean(iou), "miou_seen": seen_score, "miou_unseen": unseen_score, "hiou": hiou,
            "iou": 100 * iou}


def paired_difference(a: dict, b: dict, seen: Sequence[int], unseen: Sequence[int], view: str = "full",
                      samples: int = 1000) -> dict[str, np.ndarray]:
    """Bootstrap samples of score(a) - score(b) for the per-frame matrices ``a`` and ``b`` of the
    same frames ({frame_ids, units, full, fov}), the same units resampled for both: {score: (S,)}."""
    if list(a["frame_ids"]) != list(b["frame_ids"]):
        raise ValueError("the two were measured on different frames")
    ours = resampled_scores(a[view], a["units"], seen, unseen, samples)
    theirs = resampled_scores(b[view], b["units"], seen, unseen, samples)
    return {key: ours[key] - theirs[key] for key in SCORES}


def interval(values: np.ndarray, level: float = 0.95) -> list[float] | None:
    """The central ``level`` percentile interval of bootstrap values (None when undefined)."""
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return None
    tail = 100 * (1 - level) / 2
    return [float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))]


def support(matrices: np.ndarray, units: Sequence[str], names: Sequence[str]) -> dict:
    """Per class: ground-truth points, units (streets) where it occurs, and whether that is
    enough to measure its IoU (MIN_SUPPORT_POINTS over MIN_SUPPORT_UNITS)."""
    _, grouped = _group(matrices, units)
    per_unit = grouped.sum(2)                                  # (G, C) ground-truth points
    out = {}
    for i, name in enumerate(names):
        points, units = int(per_unit[:, i].sum()), int((per_unit[:, i] > 0).sum())
        out[name] = {"points": points, "units": units,
                     "measurable": points >= MIN_SUPPORT_POINTS and units >= MIN_SUPPORT_UNITS}
    return out


def summarize_with_intervals(matrices: np.ndarray, units: Sequence[str], names: Sequence[str],
                             seen: Sequence[int], unseen: Sequence[int], samples: int = 1000,
                             seed: int = 0, level: float = 0.95) -> dict:
    """:func:`summarize` of the summed matrices, plus bootstrap intervals over streets
    (``interval``: miou, miou_seen, miou_unseen, hiou, per_class) and per-class ``support``."""
    summary = summarize(matrices.sum(0), names, seen, unseen)
    scores = resampled_scores(matrices, units, seen, unseen, samples, seed)
    summary["interval"] = {key: interval(scores[key], level) for key in ("miou", "miou_seen", "miou_unseen", "hiou")}
    summary["interval"]["per_class"] = {name: interval(scores["iou"][:, i], level) for i, name in enumerate(names)}
    summary["interval"].update(level=level, samples=samples, units=len(set(units)),
                               frames=len(units))
    summary["support"] = support(matrices, units, names)
    return summary
