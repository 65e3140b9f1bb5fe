"""Typed settings of training."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainConfig:
    epochs_guided: int = 8          # phase 1: CLIP-guided (all losses)
    epochs_self: int = 4            # phase 2: self-training
    self_every: int = 2             # regenerate the student's own labels every R epochs
    self_top_fraction: float = 0.6  # per class, keep this most confident fraction of its points
    self_threshold: float = 0.0     # and only points at least this confident (softmax)
    self_lr_scale: float = 0.5      # self-training restarts warm-up + cosine from this share of lr
    batch_size: int = 2
    lr: float = 0.002
    weight_decay: float = 0.0001
    warmup_steps: int = 20
    grad_accum: int = 1
    amp: bool = True                # mixed precision on GPU (bf16); ignored on CPU
    num_workers: int = 0
    log_every: int = 10
    checkpoint_every: int = 0       # steps between checkpoints (0: at the end of each phase only)
    threads: int = 0                # CPU threads for torch (0: torch's default)
    device: str = "auto"
