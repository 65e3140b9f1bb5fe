"""The method's criterion: every loss of the design, each switchable and weighted by config."""

from __future__ import annotations

import torch

from zeroseg3d.losses.config import LossConfig
from zeroseg3d.losses.cross_entropy import pseudo_label_mask, pseudo_loss, seen_loss
from zeroseg3d.losses.mcfa import global_loss, local_loss


class MethodCriterion:
    """Called with the model's outputs and the batch; returns loss_* terms and their sum.

    ``phase``: 'guided' (teacher pseudo labels) or 'self' (the student's own labels replace
    the teacher's). seen / unseen: (C,) bool masks over the vocabulary.
    """

    def __init__(self, config: LossConfig, seen: torch.Tensor, unseen: torch.Tensor, phase: str = "guided",
                 generator: torch.Generator | None = None):
        self.config, self.seen, self.unseen, self.phase = config, seen, unseen, phase
        self.generator = generator

    def __call__(self, out: dict, batch: dict) -> dict:
        c = self.config
        logits, embeddings = out["logits"], out["embeddings"]
        labels = batch["labels"]
        seen, unseen = self.seen.to(labels.device), self.unseen.to(labels.device)
        terms: dict[str, torch.Tensor] = {}
        weighted = []
        if c.seen and seen.any():
            terms["loss_seen"] = seen_loss(logits, labels, seen)
            weighted.append(terms["loss_seen"])
        has_teacher = "teacher_label" in batch
        if self.phase == "guided" and c.pseudo and has_teacher:
            terms["loss_pseudo"] = pseudo_loss(logits, labels, batch["teacher_label"], batch["teacher_conf"],
                                               unseen, c.pseudo_threshold)
            weighted.append(c.pseudo_weight * terms["loss_pseudo"])
        if self.phase == "self" and "self_label" in batch:
            mask = batch["self_label"] >= 0
            terms["loss_self"] = (torch.nn.functional.cross_entropy(logits[mask], batch["self_label"][mask])
                                  if mask.any() else logits.sum() * 0.0)
            weighted.append(c.self_weight * terms["loss_self"])
        pairs = batch.get("pair_point")
        if has_teacher and pairs is not None and len(pairs) > 1:
            paired = embeddings[pairs]
            if c.mcfa_global:
                classes = labels[pairs].clone()
                classes[classes >= 0] = torch.where(seen[classes[classes >= 0]], classes[classes >= 0], -1)
                teacher_classes = torch.where(
                    pseudo_label_mask(labels, batch["teacher_label"], batch["teacher_conf"], unseen,
                                      c.pseudo_threshold), batch["teacher_label"].long(), -1)[pairs]
                classes = torch.where(classes >= 0, classes, teacher_classes)
                terms["loss_global"] = global_loss(paired, batch["pair_feature"], classes, c.global_temperature)
                weighted.append(c.global_weight * terms["loss_global"])
            if c.mcfa_local:
                terms["loss_local"] = local_loss(paired, batch["pair_patch"], batch["patch_features"],
                                                 c.local_temperature, c.local_max_patches, self.generator)
                weighted.append(c.local_weight * terms["loss_local"])
        terms["loss"] = sum(weighted) if weighted else logits.sum() * 0.0
        return terms
