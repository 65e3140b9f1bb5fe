"""Subnormal floats in training: the demo's student trained ``--warmup`` steps, then timed over
``--steps`` more with the CPU flushing subnormal floats to zero (what `Trainer` sets) and
without, over the whole run, each from the same seed, with the share of subnormal values among the parameters and
their gradients at the end. Uses the world, teacher cache and config of a finished `make demo`.
Writes benchmarks/results/subnormal.json.

    python benchmarks/bench_subnormal.py [--demo runs/demo] [--warmup 48] [--steps 48] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402


def subnormal_share(tensors) -> float:
    import torch

    tiny = torch.finfo(torch.float32).tiny
    values = [t.detach().abs().flatten() for t in tensors if t is not None and t.dtype == torch.float32]
    total = sum(len(v) for v in values)
    return 100.0 * sum(int(((v > 0) & (v < tiny)).sum()) for v in values) / max(1, total)


def run(demo: Path, flush: bool, warmup: int, steps: int, threads: int, overrides: list[str]) -> dict:
    import torch

    from zeroseg3d.engine.demo import FULL, world_config
    from zeroseg3d.engine.train import Trainer

    config = world_config(demo, FULL, 0, [f"train.threads={threads}", "run.eval_split=null", *overrides])
    with tempfile.TemporaryDirectory() as folder:
        trainer = Trainer(config, folder, progress=False)
        torch.set_flush_denormal(flush)   # after Trainer, which sets it, and for the warm-up too
        trainer.train(stop_after_batches=warmup)
        started = time.perf_counter()
        trainer.train(stop_after_batches=steps)
        seconds = time.perf_counter() - started
        params = list(trainer.setup.model.parameters())
        return {"flush": flush, "seconds": round(seconds, 2), "seconds_per_step": round(seconds / steps, 3),
                "subnormal_parameters_percent": subnormal_share(params),
                "subnormal_gradients_percent": subnormal_share([p.grad for p in params])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", default="runs/demo")
    parser.add_argument("--warmup", type=int, default=48, help="steps before timing (one epoch of the demo)")
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. data.augment.enabled=false")
    args = parser.parse_args()
    rows = [run(Path(args.demo), flush, args.warmup, args.steps, args.threads, args.overrides)
            for flush in (False, True)]
    for row in rows:
        print(row, flush=True)
    write_result("subnormal", {"warmup_steps": args.warmup, "steps": args.steps, "threads": args.threads,
                               "overrides": args.overrides, "rows": rows,
                               "speedup": round(rows[0]["seconds"] / rows[1]["seconds"], 2)})


if __name__ == "__main__":
    main()
