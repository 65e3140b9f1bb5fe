"""Symmetric InfoNCE between two sets of paired vectors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Row i of ``a`` and row i of ``b`` are a positive pair; every other row is a negative.

    Both are L2-normalised here. Returns the mean of the a->b and b->a cross-entropies of the
    cosine similarities divided by ``temperature``. Zero when fewer than two pairs.
    """
    if a.shape[0] < 2:
        return a.sum() * 0.0
    a, b = F.normalize(a, dim=-1), F.normalize(b.to(a.dtype), dim=-1)
    logits = a @ b.T / temperature
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
