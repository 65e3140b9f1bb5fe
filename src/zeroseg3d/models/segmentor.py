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

    def voxel_features(self, batch: dict) -> torch.Tensor:
        """(V, c) backbone features of every voxel of the batch, from the means of its points'
        first ``config.in_channels`` channels (x, y, z and intensity, or x, y, z). A scan without
        intensity (every value 0: a file without the field, or dropped in training by
        data.augment.intensity_dropout) is given the input norm's running mean there, the mean of
        the training scans and the value the norm centres on."""
        coords = batch["voxel_coords"]
        points = batch["points"][:, :self.config.in_channels]
        stand_in = self.intensity_stand_in()
        if stand_in is not None:
            points = self._with_stand_in(points, batch["offsets"], stand_in)
        features = scatter_mean(points, batch["point_to_voxel"], coords.shape[0])
        if self.input_norm is not None:
            features = self.input_norm(features)
        return self.backbone(features, coords, len(batch["offsets"]) - 1)

    def intensity_stand_in(self) -> torch.Tensor | None:
        """The intensity this student gives a scan without any (voxel_features): its input norm's
        running mean, the mean of its training scans (0-d tensor). None for a student of x, y, z
        alone or one without an input norm, which reads such a scan as it is."""
        if self.config.in_channels < 4 or self.input_norm is None:
            return None
        return self.input_norm.running_mean[3]

    @staticmethod
    def _with_stand_in(points: torch.Tensor, offsets: torch.Tensor, stand_in: torch.Tensor) -> torch.Tensor:
        """(N, 4) ``points`` with ``stand_in`` as the intensity of every scan (``offsets`` (B + 1,)
        delimit them) whose intensities are all 0; the others' as they are. No host
        synchronisation: the scans are told apart on the points' device."""
        counts = offsets.to(points.device).diff()
        scan = torch.repeat_interleave(torch.arange(len(counts), device=points.device), counts,
                                       output_size=len(points))
        present = torch.zeros(len(counts), dtype=points.dtype, device=points.device).index_add_(
            0, scan, points[:, 3].abs()) > 0
        intensity = torch.where(present[scan], points[:, 3], stand_in.to(points.dtype))
        return torch.cat([points[:, :3], intensity[:, None]], dim=1)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """(R, D) unit embeddings in CLIP space of (R, c) backbone features."""
        return F.normalize(self.head(features), dim=-1)

    def embed_voxels(self, batch: dict) -> torch.Tensor:
        """(V, D) unit embeddings of every voxel of the batch. The points of a voxel share its
        backbone feature, so the head runs once per voxel, not once per point."""
        return self.project(self.voxel_features(batch))

    def embed(self, batch: dict) -> torch.Tensor:
        """(N, D) unit embeddings of every point of the batch (its voxel's)."""
        return self.embed_voxels(batch)[batch["point_to_voxel"]]

    def cosine(self, features: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """(V, C) cosine between the embeddings of ``features`` (V, c) and the unit ``text``
        (C, D), without the (V, D) embeddings: with the head's last layer y = W x + b,
        y . t = x . (W^T t) + b . t and |y|^2 = x^T (W^T W) x + 2 x . W^T b + |b|^2, all in the
        c-dimensional feature space (c = 96 against D = 512: the (V, D) tensors and their
        gradients were a third of a training step at equal model size)."""
        last = self.head[-1] if isinstance(self.head, nn.Sequential) else self.head
        x = self.head[:-1](features) if isinstance(self.head, nn.Sequential) else features
        with torch.autocast(x.device.type, enabled=False):   # the squared norm in fp32: no cancellation
            weight = last.weight.float()
            bias = last.bias.float() if last.bias is not None else weight.new_zeros(weight.shape[0])
            x, text = x.float(), text.float()
            dots = x @ (text @ weight).T + text @ bias
            squared = ((x @ (weight.T @ weight)) * x).sum(1) + 2 * x @ (weight.T @ bias) + bias @ bias
            return dots * torch.rsqrt(squared.clamp_min(1e-24))[:, None]   # F.normalize's eps: |y| >= 1e-12

    def forward(self, batch: dict, text_embeddings: torch.Tensor, criterion=None) -> dict:
        """logits (N, C) = scale * cosine(point, class text) (a point's logits are its
        voxel's: ``batch["point_to_voxel"]``) and voxel_features (V, c); in training with a
        criterion, the unit embeddings of the points paired with camera pixels
        (pair_embeddings (P, D), for MCFA) and the criterion's losses (``loss`` is their
        weighted sum)."""
        features = self.voxel_features(batch)
        scale = self.logit_scale.exp().clamp(max=100.0)
        p2v = batch["point_to_voxel"]
        out = {"voxel_features": features, "logits": (scale * self.cosine(features, text_embeddings))[p2v]}
        if self.training and criterion is not None:
            pairs = batch.get("pair_point")
            if pairs is not None and len(pairs) and getattr(criterion, "uses_pair_embeddings", True):
                voxels, inverse = torch.unique(p2v[pairs], return_inverse=True)
                out["pair_embeddings"] = self.project(features[voxels])[inverse]
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
