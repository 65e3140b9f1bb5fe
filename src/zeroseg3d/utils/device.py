"""Devices: the one place a device name is checked, and batches moved to it."""

from __future__ import annotations

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


def to_device(batch: dict, device: str) -> dict:
    """The batch with its tensors on ``device`` (other values as they are)."""
    import torch

    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
