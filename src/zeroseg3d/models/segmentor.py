"""The student: sparse UNet -> per-point features -> unit vectors in CLIP space -> logits
against the frozen text embeddings of whatever vocabulary is given."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from zeroseg3d.models.backbone import BACKBONES
from zeroseg3d.models.config import ModelConfig
from zeroseg3d.utils.schedule import scatter_mean


class ZeroShotSegmentor(nn.Module):
    def __init__(self, config: ModelConfig, embed_dim: int):
        super().__init__()
        self.config = config
        self.embed_dim = embed_dim
        self.input_norm = nn.BatchNorm1d(config.in_channels) if config.input_norm else None
        self.backbone = BACKBONES.get(config.backend)(config.backbone, config.in_channels)
        channels = self.backbone.out_channels
        if config.head_hidden > 0:
            self.head = nn.Sequential(nn.Linear(channels, config.head_hidden), nn.BatchNorm1d(config.head_hidden),
                                      nn.ReLU(), nn.Linear(config.head_hidden, embed_dim))
        else:
            self.head = nn.Linear(channels, embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(config.logit_scale_init)),
                                        requires_grad=config.learn_logit_scale)

    def embed_voxels(self, batch: dict) -> torch.Tensor:
        """(V, D) unit embeddings of every voxel of the batch. The points of a voxel share its
        backbone feature, so the head runs once per voxel, not once per point (3-4x fewer
        rows at 0.15 m; it was half of a training step)."""
        coords = batch["voxel_coords"]
        voxel_features = scatter_mean(batch["points"], batch["point_to_voxel"], coords.shape[0])
        if self.input_norm is not None:
            voxel_features = self.input_norm(voxel_features)
        features = self.backbone(voxel_features, coords, len(batch["offsets"]) - 1)
        return F.normalize(self.head(features), dim=-1)

    def embed(self, batch: dict) -> torch.Tensor:
        """(N, D) unit embeddings of every point of the batch (its voxel's)."""
        return self.embed_voxels(batch)[batch["point_to_voxel"]]

    def forward(self, batch: dict, text_embeddings: torch.Tensor, criterion=None) -> dict:
        """logits (N, C) = scale * cosine(point, class text) and voxel_embeddings (V, D) (a
        point's embedding is its voxel's: ``batch["point_to_voxel"]``); in training with a
        criterion, its losses too (``loss`` is their weighted sum)."""
        voxels = self.embed_voxels(batch)
        scale = self.logit_scale.exp().clamp(max=100.0)
        logits = (scale * voxels @ text_embeddings.T)[batch["point_to_voxel"]]
        out = {"voxel_embeddings": voxels, "logits": logits}
        if self.training and criterion is not None:
            out.update(criterion(out, batch))
        return out


def create_student(config: ModelConfig, embed_dim: int, device: str = "cpu",
                   weights: dict | None = None, where: str = "weights") -> ZeroShotSegmentor:
    """The student for ``config`` projecting into a ``embed_dim``-d CLIP space, on ``device``;
    with ``weights`` (a state dict), loaded strictly: a mismatch raises ValueError naming
    ``where`` and the first keys or shapes that do not fit."""
    model = ZeroShotSegmentor(config, embed_dim)
    if weights is not None:
        try:
            missing, unexpected = model.load_state_dict(weights, strict=False)
        except RuntimeError as exc:   # shapes that do not fit; torch's first line only names the model
            lines = str(exc).splitlines()
            raise ValueError(f"{where} do not fit the backbone config "
                             f"({lines[1].strip() if len(lines) > 1 else lines[0]})") from None
        if missing or unexpected:
            raise ValueError(f"{where} do not fit the backbone config "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.to(device)
