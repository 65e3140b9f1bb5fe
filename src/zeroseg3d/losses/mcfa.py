"""MCFA: multi-granularity cross-modal feature alignment of student and teacher features."""

from __future__ import annotations

import torch

from zeroseg3d.losses.contrastive import info_nce
from zeroseg3d.utils.schedule import scatter_mean


def group_means(values: torch.Tensor, groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Means of ``values`` (M, D) over each distinct id in ``groups`` (M,).
    Returns (ids (G,), means (G, D)) with ids sorted."""
    ids, inverse = torch.unique(groups, return_inverse=True)
    return ids, scatter_mean(values, inverse, len(ids))


def local_loss(point_embeddings: torch.Tensor, patch_ids: torch.Tensor, patch_features: torch.Tensor,
               temperature: float, max_patches: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Patch level: student embeddings pooled over the points in each image patch, contrasted
    with the teacher's feature of that patch against the batch's other patches.

    point_embeddings (M, D) of paired points; patch_ids (M,) rows of ``patch_features``
    (K, D), the teacher's patch grid cells. At most ``max_patches`` patches are sampled.
    """
    ids, student = group_means(point_embeddings, patch_ids)
    teacher = patch_features[ids].float()
    if len(ids) > max_patches:
        pick = torch.randperm(len(ids), generator=generator)[:max_patches].to(ids.device)
        student, teacher = student[pick], teacher[pick]
    return info_nce(student, teacher, temperature)


def global_loss(point_embeddings: torch.Tensor, teacher_features: torch.Tensor, classes: torch.Tensor,
                temperature: float) -> torch.Tensor:
    """Semantic level: per class present, the 3D prototype (mean student embedding) against
    the 2D prototype (mean teacher feature of the same points), InfoNCE across classes.
    ``classes`` (M,) is the class of each paired point (label or pseudo label; -1 skips)."""
    valid = classes >= 0
    _, student = group_means(point_embeddings[valid], classes[valid])
    _, teacher = group_means(teacher_features[valid].float(), classes[valid])
    return info_nce(student, teacher, temperature)
