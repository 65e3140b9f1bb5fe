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
    # > 0: predict, evaluate and self-label with an exponential moving average of the weights
    # (this decay per optimizer step; buffers averaged too), which checkpoints store as "model"
    ema_decay: float = 0.0
    grad_accum: int = 1
    # auto: bf16 mixed precision on a GPU, fp32 on the CPU; bf16: on the CPU too (utils/device.py);
    # evaluation and prediction run in the precision the student trained in (auto: in bf16 on a
    # CPU with bfloat16 units too)
    precision: str = "auto"
    num_workers: int = 0
    log_every: int = 10
    checkpoint_every: int = 0       # steps between checkpoints (0: at the end of each phase only)
    threads: int = 0                # CPU threads for torch (0: torch's default)
    device: str = "auto"

    def __post_init__(self) -> None:
        from zeroseg3d.errors import ConfigError

        from zeroseg3d.utils.device import PRECISIONS

        checks = [
            (self.precision in PRECISIONS, f"train.precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}"),
            (self.epochs_guided >= 0 and self.epochs_self >= 0 and self.epochs_guided + self.epochs_self >= 1,
             f"train.epochs_guided and train.epochs_self must be >= 0 with at least one epoch, not "
             f"{self.epochs_guided} and {self.epochs_self}"),
            (self.self_every >= 1, f"train.self_every must be >= 1, not {self.self_every}"),
            (0 < self.self_top_fraction <= 1, f"train.self_top_fraction must be in (0, 1], not {self.self_top_fraction}"),
            (0 <= self.self_threshold <= 1, f"train.self_threshold must be in [0, 1], not {self.self_threshold}"),
            (self.self_lr_scale > 0, f"train.self_lr_scale must be > 0, not {self.self_lr_scale}"),
            (self.batch_size >= 1, f"train.batch_size must be >= 1, not {self.batch_size}"),
            (self.lr > 0, f"train.lr must be > 0, not {self.lr}"),
            (self.weight_decay >= 0, f"train.weight_decay must be >= 0, not {self.weight_decay}"),
            (self.warmup_steps >= 0, f"train.warmup_steps must be >= 0, not {self.warmup_steps}"),
            (0 <= self.ema_decay < 1, f"train.ema_decay must be in [0, 1), not {self.ema_decay}"),
            (self.grad_accum >= 1, f"train.grad_accum must be >= 1, not {self.grad_accum}"),
            (self.num_workers >= 0, f"train.num_workers must be >= 0, not {self.num_workers}"),
            (self.log_every >= 1, f"train.log_every must be >= 1, not {self.log_every}"),
            (self.checkpoint_every >= 0, f"train.checkpoint_every must be >= 0, not {self.checkpoint_every}"),
            (self.threads >= 0, f"train.threads must be >= 0, not {self.threads}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
