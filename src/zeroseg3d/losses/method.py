"""The method's criterion: every loss of the design, each switchable and weighted by config."""

from __future__ import annotations

import torch

from zeroseg3d.losses.config import LossConfig
from zeroseg3d.losses.cross_entropy import (lovasz_softmax, masked_cross_entropy, pseudo_label_mask, seen_mask,
                                            unseen_mass_loss)
from zeroseg3d.losses.mcfa import global_loss, local_loss


class MethodCriterion:
    """Called with the model's outputs and the batch; returns loss_* terms and their sum.

    ``phase``: 'guided' (teacher pseudo labels) or 'self' (the student's own labels too, on
    the unlabelled points the teacher leaves without a pseudo label: mostly those outside the
    camera's view). seen / unseen: (C,) bool masks over the vocabulary.
    """

    def __init__(self, config: LossConfig, seen: torch.Tensor, unseen: torch.Tensor, phase: str = "guided",
                 generator: torch.Generator | None = None):
        self.config, self.seen, self.unseen, self.phase = config, seen, unseen, phase
        self.generator = generator

    @property
    def uses_pair_embeddings(self) -> bool:
        """Whether the losses need out["pair_embeddings"] (MCFA)."""
        return self.config.mcfa_global or self.config.mcfa_local

    def __call__(self, out: dict, batch: dict) -> dict:
        c = self.config
        logits = out["logits"]
        labels = batch["labels"]
        seen, unseen = self.seen.to(labels.device), self.unseen.to(labels.device)
        terms: dict[str, torch.Tensor] = {}
        weighted = []
        # output level: (weight, sum, count) per cross-entropy term, and the labels it completes
        supervised: dict[str, tuple[float, torch.Tensor, int]] = {}
        labelled_seen = seen_mask(labels, seen)
        target = torch.where(labelled_seen, labels, -1) if c.seen else torch.full_like(labels, -1)
        has_teacher = "teacher_label" in batch
        if has_teacher:
            teacher_label = batch["teacher_label"].long()
            pseudo = pseudo_label_mask(labels, teacher_label, batch["teacher_conf"], unseen, c.pseudo_threshold)
        if c.seen and seen.any():
            supervised["loss_seen"] = (1.0, *masked_cross_entropy(logits, labels, labelled_seen))
        if c.pseudo and has_teacher:
            supervised["loss_pseudo"] = (c.pseudo_weight, *masked_cross_entropy(logits, teacher_label, pseudo))
            target = torch.where(pseudo, teacher_label, target)
        if self.phase == "self" and "self_label" in batch:
            self_label = batch["self_label"]
            own = (self_label >= 0) & (target < 0)
            supervised["loss_self"] = (c.self_weight, *masked_cross_entropy(logits, self_label, own))
            target = torch.where(own, self_label, target)
        # joint: one weighted cross-entropy over all supervised points (a pseudo-labelled point
        # counts as pseudo_weight points), so that a few hundred pseudo labels neither outweigh
        # a scan of 3D labels (per_term) nor vanish in it
        joint = max(1e-12, sum(weight * count for weight, _, count in supervised.values()))
        for name, (weight, total, count) in supervised.items():
            if c.normalize == "joint":
                terms[name] = weight * total / joint
                weighted.append(terms[name])
            else:
                terms[name] = total / max(1, count)
                weighted.append(weight * terms[name])
        if c.unseen_mass_weight > 0:
            terms["loss_unseen_mass"] = unseen_mass_loss(logits, labels < 0, unseen)
            weighted.append(c.unseen_mass_weight * terms["loss_unseen_mass"])
        if c.lovasz_weight > 0:
            terms["loss_lovasz"] = lovasz_softmax(logits, target, target >= 0, c.lovasz_max_points, self.generator)
            weighted.append(c.lovasz_weight * terms["loss_lovasz"])
        pairs = batch.get("pair_point")
        if has_teacher and pairs is not None and len(pairs) > 1 and self.uses_pair_embeddings:
            paired = out["pair_embeddings"]     # (P, D) unit embeddings of the paired points
            if c.mcfa_global:
                # prototypes of the classes the output level supervises: 3D labels, else pseudo labels
                classes = torch.where(labelled_seen, labels, torch.where(pseudo, teacher_label, -1))[pairs]
                terms["loss_global"] = global_loss(paired, batch["pair_taps"], batch["pair_tap_weights"],
                                                    batch["patch_features"], classes, c.global_temperature)
                weighted.append(c.global_weight * terms["loss_global"])
            if c.mcfa_local:
                terms["loss_local"] = local_loss(paired, batch["pair_patch"], batch["patch_features"],
                                                 c.local_temperature, c.local_max_patches, self.generator)
                weighted.append(c.local_weight * terms["loss_local"])
        terms["loss"] = sum(weighted) if weighted else logits.sum() * 0.0
        return terms
