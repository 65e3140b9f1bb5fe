"""AdamW's step on the CPU: torch's for-loop (its CPU default), foreach and fused
implementations, and what the fused one (utils/optim.adamw, as training runs) changes in the
demo teacher's whole training step.

1. The step alone, on the parameters of the demo teacher (7.8M, a 49,408-token text embedding
   among them), the small student (2.0M) and the MinkUNet34 student (39.2M), random gradients;
   the three implementations alternate over ``--rounds``; medians of ms per step.
2. `train_world_clip` for ``--steps`` steps on a finished `make demo`'s images in processes
   alternating between the library's optimizer (fused) and the for-loop one (``--pairs`` of
   each); medians of seconds per step and the median paired ratio.

    python benchmarks/bench_optimizer.py [--demo runs/demo] [--rounds 5] [--steps 20] [--pairs 3]

Writes benchmarks/results/optimizer.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402

IMPLEMENTATIONS = {"for_loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def parameter_sets() -> dict:
    import open_clip
    import torch

    from common import random_student
    from zeroseg3d.world.clip_training import MODEL_CONFIG

    teacher = open_clip.CLIP(MODEL_CONFIG["embed_dim"], MODEL_CONFIG["vision_cfg"], MODEL_CONFIG["text_cfg"])
    sets = {"demo_teacher": list(teacher.parameters())}
    for backbone in ("small", "minkunet34"):
        sets[f"student_{backbone}"] = list(random_student(backbone)[0].parameters())
    for params in sets.values():
        for p in params:
            p.grad = torch.randn_like(p)
    return sets


def step_alone(rounds: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    results = {}
    for name, params in parameter_sets().items():
        times: dict[str, list[float]] = {k: [] for k in IMPLEMENTATIONS}
        for _ in range(rounds):
            for implementation, options in IMPLEMENTATIONS.items():
                optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.05, **options)
                for _ in range(2):
                    optimizer.step()
                start = time.perf_counter()
                for _ in range(10):
                    optimizer.step()
                times[implementation].append((time.perf_counter() - start) / 10 * 1000)
        medians = {k: statistics.median(v) for k, v in times.items()}
        results[name] = {"parameters": sum(p.numel() for p in params), "tensors": len(params),
                         "ms_per_step": medians, "runs_ms": times,
                         "for_loop_over_fused": medians["for_loop"] / medians["fused"]}
        print(name, {k: round(v, 1) for k, v in medians.items()}, flush=True)
    return results


WORKER = r"""
import json, sys, tempfile
from pathlib import Path
import torch
import zeroseg3d.world.clip_training as clip_training
from zeroseg3d.engine.demo import FULL, teacher_folders
from zeroseg3d.world.config import ClipTrainConfig

demo, optimizer, steps, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if optimizer == "for_loop":
    clip_training.adamw = lambda params, lr, weight_decay: torch.optim.AdamW(
        params, lr=lr, weight_decay=weight_decay, foreach=False)
folders = teacher_folders(Path(demo) / "world", FULL)
with tempfile.TemporaryDirectory() as folder:
    record = clip_training.train_world_clip(folders, Path(folder) / "zs3d-bench.safetensors",
                                            ClipTrainConfig(steps=steps, threads=threads, precision="fp32"),
                                            progress=False)
print(json.dumps({"seconds_per_step": record["seconds"] / steps, "final_losses": record["final_losses"]}))
"""


def teacher_training(demo: str, steps: int, pairs: int, threads: int) -> dict:
    runs: dict[str, list[dict]] = {"fused": [], "for_loop": []}
    for pair in range(pairs):
        # which goes first alternates, so the machine's drift falls on both
        for optimizer in (("fused", "for_loop") if pair % 2 == 0 else ("for_loop", "fused")):
            out = subprocess.run([sys.executable, "-c", WORKER, demo, optimizer, str(steps), str(threads)],
                                 capture_output=True, text=True, check=True).stdout
            runs[optimizer].append(json.loads(out.strip().splitlines()[-1]))
            print(optimizer, round(runs[optimizer][-1]["seconds_per_step"], 3), flush=True)
    per_step = {k: [r["seconds_per_step"] for r in v] for k, v in runs.items()}
    ratios = [a / b for a, b in zip(per_step["for_loop"], per_step["fused"])]
    return {"steps_per_run": steps, "seconds_per_step": {k: statistics.median(v) for k, v in per_step.items()},
            "runs_seconds_per_step": per_step, "for_loop_over_fused": {"median": statistics.median(ratios),
                                                                       "pairs": ratios},
            "final_losses": {k: [r["final_losses"] for r in v] for k, v in runs.items()}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--demo", default="runs/demo")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    result = {"threads": args.threads, "step_alone": step_alone(args.rounds, args.threads)}
    if args.pairs:
        result["demo_teacher_training"] = teacher_training(args.demo, args.steps, args.pairs, args.threads)
    result["command"] = "python benchmarks/bench_optimizer.py " + " ".join(sys.argv[1:])
    write_result("optimizer", result)


if __name__ == "__main__":
    main()
