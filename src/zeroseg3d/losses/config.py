"""Typed settings of the losses."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LossConfig:
    seen: bool = True
    pseudo: bool = True
    pseudo_weight: float = 1.0
    pseudo_threshold: float = 0.5      # teacher softmax confidence
    mcfa_global: bool = True
    global_weight: float = 0.5
    global_temperature: float = 0.1
    mcfa_local: bool = True
    local_weight: float = 0.5
    local_temperature: float = 0.1
    local_max_patches: int = 1024
    self_weight: float = 1.0           # self-training cross-entropy (phase 2)
