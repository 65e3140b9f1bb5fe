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


def global_loss(point_embeddings: torch.Tensor, taps: torch.Tensor, tap_weights: torch.Tensor,
                patch_features: torch.Tensor, classes: torch.Tensor, temperature: float) -> torch.Tensor:
    """Semantic level: per class present, the 3D prototype (mean student embedding) against
    the 2D prototype (mean teacher feature of the same points), InfoNCE across classes.
    A point's teacher feature is the bilinear mix ``tap_weights`` (M, 4) of the rows ``taps``
    (M, 4) of ``patch_features`` (K, D), so the 2D prototypes are one (G, K) x (K, D) product.
    ``classes`` (M,) is the class of each paired point (label or pseudo label; -1 skips)."""
    valid = classes >= 0
    ids, inverse = torch.unique(classes[valid], return_inverse=True)
    student = scatter_mean(point_embeddings[valid], inverse, len(ids))
    mix = torch.zeros(len(ids), len(patch_features), device=patch_features.device)
    mix.index_put_((inverse[:, None].expand(-1, taps.shape[1]).reshape(-1), taps[valid].reshape(-1)),
                   tap_weights[valid].float().reshape(-1), accumulate=True)
    with torch.autocast(patch_features.device.type, enabled=False):   # teacher means in fp32
        teacher = (mix @ patch_features.float()) / mix.sum(1, keepdim=True).clamp_min(1e-12)
    return info_nce(student, teacher, temperature)
