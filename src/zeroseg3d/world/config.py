"""Typed settings of the demo teacher's training (``zeroseg3d world train-clip``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ClipTrainConfig:
    steps: int = 700
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: int = 40
    dense_weight: float = 2.0
    hard_class_share: float = 0.5   # share of crops drawn by running per-class error (0: uniform)
    min_crop: int = 10
    max_crop: int = 96
    threads: int = 2
    seed: int = 0
    # the towers' forward in bfloat16 (losses in float32) where the CPU has bfloat16 matrix
    # units (docs/results.md); "fp32" everywhere else or when asked
    precision: str = "auto"        # auto | bf16 | fp32

    def __post_init__(self) -> None:
        from zeroseg3d.errors import ConfigError

        checks = [
            (self.steps >= 0, f"steps must be >= 0, not {self.steps}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, not {self.batch_size}"),
            (self.lr > 0, f"lr must be > 0, not {self.lr}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, not {self.weight_decay}"),
            (self.warmup >= 0, f"warmup must be >= 0, not {self.warmup}"),
            (self.dense_weight >= 0, f"dense_weight must be >= 0, not {self.dense_weight}"),
            (0 <= self.hard_class_share <= 1, f"hard_class_share must be in [0, 1], not {self.hard_class_share}"),
            (1 <= self.min_crop <= self.max_crop, f"crops need 1 <= min_crop <= max_crop, not {self.min_crop}, "
                                                   f"{self.max_crop}"),
            (self.threads >= 1, f"threads must be >= 1, not {self.threads}"),
            (self.precision in ("auto", "bf16", "fp32"),
             f"precision must be auto, bf16 or fp32, not {self.precision!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def use_bf16(self) -> bool:
        import torch

        if self.precision != "auto":
            return self.precision == "bf16"
        try:   # a private probe: a torch build without it has no bfloat16 CPU kernels to offer
            return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
