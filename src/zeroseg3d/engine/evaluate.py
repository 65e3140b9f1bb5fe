"""Evaluation of the student: confusion matrices over the full scan and inside the camera
view, IoU per class, mIoU over all / seen / unseen classes, hIoU."""

from __future__ import annotations

import numpy as np
import torch

from zeroseg3d.datasets.pipeline import collate
from zeroseg3d.datasets.vocabulary import Split
from zeroseg3d.metrics import confusion_matrix, summarize


def to_device(batch: dict, device: str) -> dict:
    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


@torch.no_grad()
def predict_logits(model, text: torch.Tensor, sample, device: str = "cpu") -> torch.Tensor:
    """(N, C) logits of one sample."""
    batch = to_device(collate([sample]), device)
    return model(batch, text.to(device))["logits"].float().cpu()


def evaluate(model, text: torch.Tensor, dataset, split: Split, device: str = "cpu",
             progress: bool = True) -> dict:
    """Metrics in percent (keys miou, miou_seen, miou_unseen, hiou, per_class, fov{...})."""
    from tqdm import tqdm

    from zeroseg3d.engine import distributed

    names = dataset.frames.vocabulary.names
    num_classes = len(names)
    full = np.zeros((num_classes, num_classes), np.int64)
    fov = np.zeros_like(full)
    was_training = model.training
    model.eval()
    # each process takes every world_size-th frame; the confusion matrices are summed
    frames = range(distributed.rank(), len(dataset), distributed.world_size())
    for index in tqdm(frames, desc="evaluate", unit="frame", disable=not progress or distributed.rank() > 0):
        sample = dataset[index]
        predicted = predict_logits(model, text, sample, device).argmax(1).numpy()
        full += confusion_matrix(predicted, sample.labels, num_classes)
        in_view = np.unique(sample.pairing.point_idx)
        fov += confusion_matrix(predicted[in_view], sample.labels[in_view], num_classes)
    model.train(was_training)
    full = distributed.all_reduce_sum(torch.from_numpy(full)).numpy()
    fov = distributed.all_reduce_sum(torch.from_numpy(fov)).numpy()
    metrics = summarize(full, names, split.seen, split.unseen)
    metrics["fov"] = summarize(fov, names, split.seen, split.unseen)
    metrics["seen_classes"] = [names[i] for i in split.seen]
    metrics["unseen_classes"] = [names[i] for i in split.unseen]
    metrics["confusion"] = full.tolist()
    metrics["confusion_fov"] = fov.tolist()
    return metrics
