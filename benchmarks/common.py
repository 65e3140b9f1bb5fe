"""Shared helpers of the benchmarks: the real sample scan, device description, result files."""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ZEROSEG3D_SHARED", REPO.parent / "shared"))
KITTI = SHARED / "data" / "semantickitti"
RESULTS = REPO / "benchmarks" / "results"


def device_description() -> dict:
    import torch

    info = {"cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, repeat: int = 3, warmup: int = 1) -> float:
    """Median seconds of ``fn()`` over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def write_result(name: str, result: dict) -> Path:
    from zeroseg3d.utils.atomic import atomic_write_text

    result = {"benchmark": name, "device": device_description(), "date": time.strftime("%Y-%m-%d %H:%M"), **result}
    path = RESULTS / f"{name}.json"
    atomic_write_text(path, json.dumps(result, indent=2))
    return path


def target_line(label: str, value: float, target: float, unit: str, lower_is_better: bool = True) -> str:
    met = value <= target if lower_is_better else value >= target
    if met:
        return f"{label}: {value:.3g} {unit} (target {'<=' if lower_is_better else '>='} {target:g}: met)"
    ratio = value / target if lower_is_better else target / value
    return f"{label}: {value:.3g} {unit} (target {'<=' if lower_is_better else '>='} {target:g}: MISSED by {ratio:.2f}x)"
