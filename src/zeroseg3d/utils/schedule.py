"""Numeric helpers shared by the student, its losses and the demo teacher's training."""

from __future__ import annotations

import math

import torch


def warmup_cosine(step: int, steps: int, warmup: int) -> float:
    """Learning-rate factor: linear warm-up over ``warmup`` steps, then a cosine from 1 to 0
    at ``steps``."""
    warmup = max(1, warmup)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def scatter_mean(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """(size, D) means of the rows of ``values`` (M, D) that ``index`` (M,) sends to each row;
    rows nothing is sent to are zero."""
    sums = torch.zeros(size, values.shape[1], dtype=values.dtype, device=values.device)
    sums.index_add_(0, index, values)
    counts = torch.bincount(index, minlength=size).clamp(min=1).to(values.dtype)
    return sums / counts[:, None]
