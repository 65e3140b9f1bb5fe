"""Devices: the one place a device name is checked, and batches moved to it."""

from __future__ import annotations

import functools

from zeroseg3d.errors import ConfigError


def resolve_device(name: str) -> str:
    """``auto`` -> cuda when a GPU is visible, else cpu; any other name is checked, so a missing
    GPU is one clear error at the start instead of a failure deep inside a run."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r}: no CUDA GPU is visible to torch {torch.__version__}")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: only {torch.cuda.device_count()} GPU(s) are visible")
    elif device.type != "cpu":
        raise ConfigError(f"device {name!r}: zeroseg3d runs on cpu or cuda")
    return name


def is_cuda(device) -> bool:
    """Whether ``device`` (a name such as cuda:1, or a torch.device) is a CUDA GPU."""
    return str(device).startswith("cuda")


def to_device(batch: dict, device: str) -> dict:
    """The batch with its tensors on ``device`` (other values as they are)."""
    import torch

    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


PRECISIONS = ("auto", "fp32", "bf16")


@functools.cache
def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (avx512_bf16 or AMX), where zeroseg3d's
    bfloat16 sparse convolutions beat float32; elsewhere torch emulates them, slower."""
    import torch

    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


def _mixed(device: str, precision: str, inference: bool = False) -> tuple[str, bool]:
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    kind = "cuda" if is_cuda(device) else "cpu"
    auto = kind == "cuda" or (inference and native_bf16())
    return kind, precision == "bf16" or (precision == "auto" and auto)


def autocast(device: str, precision: str, inference: bool = False):
    """The context a network runs in: ``auto`` is bfloat16 mixed precision on a GPU, and on the
    CPU float32 in training and, with ``inference``, bfloat16 products where the CPU has
    bfloat16 units (native_bf16: 1.1-1.2x faster, the demo student's labels those of float32 on
    all but 0.02-0.15% of the points, the same mIoU: docs/results.md); ``bf16`` is bfloat16 products on
    either (on the CPU through zeroseg3d's sparse convolution kernels, models/sparse_conv.py);
    ``fp32`` is float32 throughout. On a GPU the sparse convolutions run in float16 under it
    (spconv has no bfloat16 kernels; models/sparse_conv.gpu_compute_dtype)."""
    import torch

    kind, enabled = _mixed(device, precision, inference)
    return torch.autocast(kind, dtype=torch.bfloat16, enabled=enabled)


def grad_scaler(device: str, precision: str):
    """The loss scaler of a training step: on a GPU under autocast the sparse convolutions and
    their gradients are float16, whose small gradients would flush to zero unscaled; disabled
    (a pass-through) elsewhere."""
    import torch

    kind, enabled = _mixed(device, precision)
    return torch.amp.GradScaler(kind, enabled=enabled and kind == "cuda")
