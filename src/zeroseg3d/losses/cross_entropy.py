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


def unseen_mass_loss(logits: torch.Tensor, mask: torch.Tensor, unseen: torch.Tensor) -> torch.Tensor:
    """Mean over the masked points of -log P(some unseen class): the 3D labels cover every
    seen class, so a point they leave unlabelled is none of them, wherever it is in the scan.
    It says nothing about which unseen class; pseudo labels and MCFA do."""
    if not bool(mask.any()) or not bool(unseen.any()) or bool(unseen.all()):
        return logits.sum() * 0.0
    log_probs = logits[mask].float().log_softmax(dim=1)
    return -torch.logsumexp(log_probs[:, unseen], dim=1).mean()


def lovasz_softmax(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, max_points: int = 0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Lovasz-softmax (Berman et al., CVPR 2018) of the masked points: a convex surrogate of
    1 - IoU per class present among their targets, averaged over those classes. Cross-entropy
    favours the frequent classes; this optimises the per-class IoU the benchmark reports.
    With ``max_points`` > 0, a random subset of that many masked points stands for them all
    (its cost is a sort per class: about 0.2 s for 200,000 points on two CPU cores)."""
    rows = torch.nonzero(mask).squeeze(1)
    if len(rows) == 0:
        return logits.sum() * 0.0
    if 0 < max_points < len(rows):
        rows = rows[torch.randperm(len(rows), generator=generator)[:max_points].to(rows.device)]
    probs = logits[rows].float().softmax(dim=1)
    targets = targets[rows].long()
    present = torch.unique(targets)
    foreground = (targets[:, None] == present[None, :]).float()          # (P, K) per present class
    # stable: ties (points of equal error) keep one order, so a step is reproducible bit for bit
    errors, order = torch.sort((foreground - probs[:, present]).abs(), dim=0, descending=True, stable=True)
    sorted_fg = foreground.gather(0, order)
    total = sorted_fg.sum(0)
    jaccard = 1.0 - (total - sorted_fg.cumsum(0)) / (total + (1 - sorted_fg).cumsum(0))
    jaccard = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])       # the Lovasz extension's gradient
    return (errors * jaccard).sum(0).mean()
