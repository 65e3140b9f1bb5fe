"""Where a training step of the demo's student goes: loading, forward, backward, optimizer.

On the world of a finished `make demo` (its training frames, teacher cache and student config),
batches of the configured size, timed over several steps after one warm-up step, with a
torch.profiler table of one forward and backward. Writes benchmarks/results/train_step.json.

    python benchmarks/bench_train_step.py [--demo runs/demo] [--steps 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402


def main() -> None:
    import numpy as np
    import torch

    from zeroseg3d.datasets.pipeline import collate, finish_batch
    from zeroseg3d.engine.demo import FULL, world_config
    from zeroseg3d.engine.train import Trainer
    from zeroseg3d.losses.method import MethodCriterion

    parser = argparse.ArgumentParser()
    parser.add_argument("--demo", default="runs/demo")
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    config = world_config(Path(args.demo), FULL, 0, ["run.eval_split=null"])
    with tempfile.TemporaryDirectory() as folder:
        trainer = Trainer(config, folder, progress=False)
    setup = trainer.setup
    criterion = MethodCriterion(config.loss, trainer.seen, trainer.unseen, "guided", trainer.generator)
    size = config.train.batch_size
    times: dict[str, list[float]] = {k: [] for k in ("load", "collate", "forward", "backward", "optimizer")}
    for step in range(args.steps + 1):
        clock = time.perf_counter()
        samples = [setup.train_set[(step * size + i) % len(setup.train_set)] for i in range(size)]
        marks = [time.perf_counter()]
        batch = finish_batch(collate(samples))   # the training step augments and voxelizes on its device
        marks.append(time.perf_counter())
        out = setup.model(batch, setup.text, criterion)
        marks.append(time.perf_counter())
        out["loss"].backward()
        marks.append(time.perf_counter())
        trainer.optimizer.step()
        trainer.optimizer.zero_grad(set_to_none=True)
        marks.append(time.perf_counter())
        if step == 0:
            continue   # warm-up
        for key, start, end in zip(times, [clock] + marks[:-1], marks):
            times[key].append(end - start)
    with torch.profiler.profile() as profile:
        setup.model(batch, setup.text, criterion)["loss"].backward()
    table = profile.key_averages().table(sort_by="cpu_time_total", row_limit=12)
    print(table)
    result = {"median_seconds": {k: float(np.median(v)) for k, v in times.items()},
              "step_seconds": float(np.median(np.sum([v for v in times.values()], axis=0))),
              "voxels": int(len(batch["voxel_coords"])), "points": int(len(batch["points"])),
              "batch_size": size, "voxel_size": config.data.voxel_size, "backbone": config.model.backbone,
              "threads": torch.get_num_threads(), "profile": table}
    print({k: round(v, 3) for k, v in result["median_seconds"].items()}, "step", round(result["step_seconds"], 3))
    write_result("train_step", result)


if __name__ == "__main__":
    main()
