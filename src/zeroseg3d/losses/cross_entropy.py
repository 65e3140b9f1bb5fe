"""Output-level supervision: 3D labels of seen classes, and pseudo labels of unseen classes."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def seen_loss(logits: torch.Tensor, labels: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on points labelled with a seen class. ``seen`` (C,) bool."""
    valid = labels >= 0
    valid[valid.clone()] = seen[labels[valid]]
    if not valid.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[valid], labels[valid])


def pseudo_label_mask(labels: torch.Tensor, pseudo: torch.Tensor, confidence: torch.Tensor,
                      unseen: torch.Tensor, threshold: float) -> torch.Tensor:
    """Points that take a pseudo label: unlabelled in 3D, with a pseudo label of an unseen
    class at confidence >= threshold."""
    mask = (labels < 0) & (pseudo >= 0) & (confidence >= threshold)
    mask[mask.clone()] = unseen[pseudo[mask]]
    return mask


def pseudo_loss(logits: torch.Tensor, labels: torch.Tensor, pseudo: torch.Tensor,
                confidence: torch.Tensor, unseen: torch.Tensor, threshold: float) -> torch.Tensor:
    """Cross-entropy on the pseudo labels selected by :func:`pseudo_label_mask`."""
    mask = pseudo_label_mask(labels, pseudo, confidence, unseen, threshold)
    if not mask.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[mask], pseudo[mask].long())
