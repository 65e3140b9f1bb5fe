"""Evaluation of the student: confusion matrices over the full scan and inside the camera
view, per frame, summed into IoU per class, mIoU over all / seen / unseen classes and hIoU,
each with a bootstrap interval over streets and the per-class support."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch

from zeroseg3d.datasets.pipeline import collate
from zeroseg3d.datasets.vocabulary import Split
from zeroseg3d.metrics import PER_FRAME, confusion_matrix, json_safe, summarize_with_intervals
from zeroseg3d.utils.device import autocast, to_device



@torch.no_grad()
def predict_logits(model, text: torch.Tensor, sample, device: str = "cpu", precision: str = "auto",
                   source=None) -> torch.Tensor:
    """(N, C) float32 logits of one sample, the network run at ``precision`` (utils/device.py).
    A scan without intensity given to a student that reads it is said in a warning naming
    ``source`` (default: the sample's frame id), with what the student is given in its place
    (ZeroShotSegmentor.intensity_stand_in); not for a student whose training scans had none
    either (a stand-in of exactly 0)."""
    stand_in = model.intensity_stand_in()
    if model.config.in_channels == 4 and not sample.points[:, 3].any() and (stand_in is None or stand_in != 0):
        given = "0" if stand_in is None else f"its training scans' mean {float(stand_in):.3g}"
        warnings.warn(f"{source or sample.frame_id}: no intensity (every value 0), which this student reads "
                      f"(model.in_channels=4): given {given}, it predicts worse than with the scan's own; a "
                      "student trained with model.in_channels=3 (or data.augment.intensity_dropout) needs none")
    batch = to_device(collate([sample]), device)
    with autocast(device, precision, inference=True):
        return model(batch, text.to(device))["logits"].float().cpu()


def summarize_frames(full: np.ndarray, fov: np.ndarray, frame_ids: list[str], units: list[str],
                     names: list[str], split: Split) -> dict:
    """Metrics of per-frame confusion matrices (F, C, C[+1]) over the full scan and the camera
    view, intervals resampling ``units`` (each frame's sequence); the matrices themselves are
    kept under PER_FRAME."""
    metrics = summarize_with_intervals(full, units, names, split.seen, split.unseen)
    metrics["fov"] = summarize_with_intervals(fov, units, names, split.seen, split.unseen)
    metrics["seen_classes"] = [names[i] for i in split.seen]
    metrics["unseen_classes"] = [names[i] for i in split.unseen]
    metrics["confusion"] = full.sum(0).tolist()
    metrics["confusion_fov"] = fov.sum(0).tolist()
    metrics[PER_FRAME] = {"frame_ids": list(frame_ids), "units": list(units), "full": full, "fov": fov}
    return metrics


def evaluate(model, text: torch.Tensor, dataset, split: Split, device: str = "cpu",
             progress: bool = True, precision: str = "auto") -> dict:
    """Metrics in percent (keys miou, miou_seen, miou_unseen, hiou, per_class, interval,
    support, fov{...}) of the model on every frame of ``dataset``, run at ``precision``."""
    from tqdm import tqdm

    from zeroseg3d.engine import distributed

    names = dataset.frames.vocabulary.names
    num_classes = len(names)
    full = np.zeros((len(dataset), num_classes, num_classes), np.int64)
    fov = np.zeros_like(full)
    was_training = model.training
    model.eval()
    # each process takes every world_size-th frame; the matrices are summed over processes
    frames = range(distributed.rank(), len(dataset), distributed.world_size())
    for index in tqdm(frames, desc="evaluate", unit="frame", disable=not progress or distributed.rank() > 0):
        sample = dataset[index]
        if not (sample.labels >= 0).any():   # nothing to score: no inference (a test split reads fast)
            continue
        predicted = predict_logits(model, text, sample, device, precision).argmax(1).numpy()
        full[index] = confusion_matrix(predicted, sample.labels, num_classes)
        in_view = np.unique(sample.pairing.point_idx)
        fov[index] = confusion_matrix(predicted[in_view], sample.labels[in_view], num_classes)
    model.train(was_training)
    full = distributed.all_reduce_sum(torch.from_numpy(full)).numpy()
    fov = distributed.all_reduce_sum(torch.from_numpy(fov)).numpy()
    if full.sum() == 0:
        from zeroseg3d.errors import DataError

        ids = dataset.frames.frame_ids
        raise DataError(getattr(dataset.frames, "root", None),
                        f"none of the {len(ids)} frames ({ids[0]} to {ids[-1]}) has labels to evaluate against")
    return summarize_frames(full, fov, dataset.frames.frame_ids, dataset.frames.frame_sequences, names, split)


def evaluate_checkpoint(checkpoint: str | Path, out: str | Path, split_name: str = "val",
                        overrides: list[str] = (), device: str = "auto") -> dict:
    """Stage: a checkpoint's metrics on a split of the data it was trained on (``overrides`` of
    its stored config, e.g. ``data.root=...``): out/metrics.json with per-frame matrices, an IoU
    chart and the full-scan confusion matrix. Returns the metrics."""
    from zeroseg3d.config import load_config_text
    from zeroseg3d.engine.builder import eval_set, load_student
    from zeroseg3d.engine.checkpoint import CheckpointError, load_checkpoint
    from zeroseg3d.engine.visualize import confusion_picture, iou_chart
    from zeroseg3d.models.fold import fold_batch_norms
    from zeroseg3d.utils.device import resolve_device

    out = Path(out)
    state = load_checkpoint(checkpoint)
    config = load_config_text(state["config"], f"{checkpoint} (stored config)", list(overrides))
    _, model = load_student(state, checkpoint, config)
    dataset = eval_set(config, split_name)
    if dataset.frames.vocabulary.names != list(state["vocabulary"]):
        raise CheckpointError(f"{checkpoint}: trained with classes {state['vocabulary']}, the data has "
                              f"{dataset.frames.vocabulary.names}; evaluate with the same vocabulary")
    device = resolve_device(device)
    model = fold_batch_norms(model)   # inference only from here
    metrics = evaluate(model.to(device), state["text_embeddings"], dataset, dataset.split, device,
                       precision=config.train.precision)
    save_metrics(metrics, out)
    title = f"{Path(checkpoint).name} on {split_name}"
    iou_chart(metrics, out / "iou_per_class.png", title)
    confusion_picture(metrics[PER_FRAME]["full"].sum(0), list(metrics["per_class"]), out / "confusion.png",
                      f"{title}, full scan", metrics.get("unseen_classes", ()))
    return metrics


def save_metrics(metrics: dict, directory: str | Path, name: str = "metrics") -> Path:
    """``name``.json (strict JSON) and, when there are per-frame matrices, ``name``_per_frame.npz
    beside it (plain arrays: loads with allow_pickle=False). Returns the JSON path."""
    from zeroseg3d.utils.atomic import atomic_write_bytes, atomic_write_text

    directory = Path(directory)
    per_frame = metrics.get(PER_FRAME)
    if per_frame is not None:
        import io

        buffer = io.BytesIO()
        np.savez_compressed(buffer, frame_ids=np.array(per_frame["frame_ids"], dtype=str),
                            units=np.array(per_frame["units"], dtype=str),
                            full=per_frame["full"], fov=per_frame["fov"])
        atomic_write_bytes(directory / f"{name}_per_frame.npz", buffer.getvalue())
    path = directory / f"{name}.json"
    atomic_write_text(path, json.dumps(json_safe({k: v for k, v in metrics.items() if k != PER_FRAME}), indent=2))
    return path


def load_metrics(directory: str | Path, name: str = "metrics") -> dict:
    """What :func:`save_metrics` wrote: the metrics, with their per-frame matrices when saved."""
    directory = Path(directory)
    metrics = json.loads((directory / f"{name}.json").read_text())
    if (directory / f"{name}_per_frame.npz").is_file():
        metrics[PER_FRAME] = load_per_frame(directory / f"{name}_per_frame.npz")
    return metrics


def load_per_frame(path: str | Path) -> dict:
    """The per-frame matrices saved by :func:`save_metrics`."""
    with np.load(path, allow_pickle=False) as data:
        return {"frame_ids": [str(f) for f in data["frame_ids"]], "units": [str(u) for u in data["units"]],
                "full": data["full"], "fov": data["fov"]}
