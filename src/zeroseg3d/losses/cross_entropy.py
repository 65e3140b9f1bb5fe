"""Output-level supervision: 3D labels of seen classes, and pseudo labels of unseen classes.

The criterion selects points with the masks below and sums their cross-entropies with
:func:`masked_cross_entropy`, a (sum, count) pair, so that it can normalise the terms jointly
(one cross-entropy over the labels completed with pseudo labels, as in the paper) or each by
its own count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def seen_mask(labels: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """Points labelled with a seen class. ``seen`` (C,) bool."""
    mask = labels >= 0
    mask[mask.clone()] = seen[labels[mask]]
    return mask


def pseudo_label_mask(labels: torch.Tensor, pseudo: torch.Tensor, confidence: torch.Tensor,
                      unseen: torch.Tensor, threshold: float) -> torch.Tensor:
    """Points that take a pseudo label: unlabelled in 3D, with a pseudo label of an unseen
    class at confidence >= threshold."""
    mask = (labels < 0) & (pseudo >= 0) & (confidence >= threshold)
    mask[mask.clone()] = unseen[pseudo[mask]]
    return mask


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor,
                         mask: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(sum of the cross-entropies of the masked points, their count)."""
    count = int(mask.sum())
    if count == 0:
        return logits.sum() * 0.0, 0
    return F.cross_entropy(logits[mask], targets[mask].long(), reduction="sum"), count
