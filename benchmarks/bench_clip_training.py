"""The demo teacher's training in float32 and in bfloat16 (CPU): seconds per step.

Runs `train_world_clip` itself (the demo's recipe and images: the training streets and the
camera-only images of a finished `make demo`) for a few steps in each precision, the two
alternating twice to spread the machine's drift over both; medians of the seconds per step.
Writes benchmarks/results/clip_training.json.

    python benchmarks/bench_clip_training.py [--demo runs/demo] [--steps 20]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402


def main() -> None:
    import numpy as np

    from zeroseg3d.engine.demo import FULL, teacher_folders
    from zeroseg3d.world.clip_training import train_world_clip
    from zeroseg3d.world.config import ClipTrainConfig

    parser = argparse.ArgumentParser()
    parser.add_argument("--demo", default="runs/demo")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    folders = teacher_folders(Path(args.demo) / "world", FULL)
    seconds: dict[str, list[float]] = {"fp32": [], "bf16": []}
    with tempfile.TemporaryDirectory() as folder:
        for run, precision in enumerate(("fp32", "bf16", "fp32", "bf16")):
            config = ClipTrainConfig(steps=args.steps, threads=args.threads, precision=precision)
            record = train_world_clip(folders, Path(folder) / f"run{run}" / "zs3d-bench-clip.safetensors", config,
                                      progress=False)
            seconds[precision].append(record["seconds"] / args.steps)
    result = {"seconds_per_step": {k: float(np.median(v)) for k, v in seconds.items()}, "runs": seconds,
              "steps_per_run": args.steps, "batch": ClipTrainConfig.batch_size, "threads": args.threads,
              "auto_precision_here": "bf16" if ClipTrainConfig().use_bf16() else "fp32"}
    result["bf16_speedup"] = result["seconds_per_step"]["fp32"] / result["seconds_per_step"]["bf16"]
    print({k: round(v, 3) for k, v in result["seconds_per_step"].items()}, "speed-up", round(result["bf16_speedup"], 2))
    write_result("clip_training", result)


if __name__ == "__main__":
    main()
