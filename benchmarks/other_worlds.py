"""Students on worlds of other seeds: do the numbers hold on streets of a world nobody trained
or tuned on?

Renders (once, into runs/other_worlds/world_SEED) validation streets 08, 09, ... of each world
seed, and evaluates every checkpoint there: its stored config with ``data.root`` pointed at
that world. Checkpoints come as NAME=PATH; a name given several times (one checkpoint per
training seed) is reported as the mean and spread over its checkpoints, with the mean of their
bootstrap intervals over streets. Writes benchmarks/results/other_worlds.{json,md}.

    python benchmarks/other_worlds.py default=runs/demo/ablation/objects_among_seed0/checkpoints/last.pt \\
        default=runs/demo/ablation/objects_among_seed1/checkpoints/last.pt --world-seeds 5 7
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, named_checkpoints, write_result  # noqa: E402

from zeroseg3d.metrics import SCORES  # noqa: E402


def world_of_seed(root: Path, seed: int, streets: int, frames: int, workers: int) -> tuple[Path, list[str]]:
    from zeroseg3d.engine.demo import VAL_START, missing_streets
    from zeroseg3d.world.generate import generate_world

    world = root / f"world_{seed}"
    names = [f"{VAL_START + i:02d}" for i in range(streets)]
    for first, count in missing_streets(world, names):
        generate_world(world, count, frames, seed=seed, start=first, workers=workers, progress=True)
    return world, names


def main() -> None:
    from zeroseg3d.engine.evaluate import evaluate_checkpoint
    from zeroseg3d.metrics import json_safe
    from zeroseg3d.utils.atomic import atomic_write_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", metavar="NAME=PATH")
    parser.add_argument("--world-seeds", type=int, nargs="+", default=[5, 7])
    parser.add_argument("--streets", type=int, default=20)
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--root", default="runs/other_worlds")
    parser.add_argument("--out", type=Path, default=RESULTS / "other_worlds", help="result files, without suffix")
    args = parser.parse_args()
    pairs = [(name, path) for name, paths in named_checkpoints(args.checkpoints).items() for path in paths]
    root = Path(args.root)
    started = time.time()
    runs: dict[tuple[str, int], list[dict]] = {}
    for seed in args.world_seeds:
        world, names = world_of_seed(root, seed, args.streets, args.frames, args.workers)
        for i, (name, path) in enumerate(pairs):
            metrics = evaluate_checkpoint(path, root / f"{name}_{i}_world{seed}", "val",
                                          [f"data.root={world.resolve()}", f"data.val_sequences=[{','.join(names)}]"])
            runs.setdefault((name, seed), []).append(metrics)
            print(f"{name} ({path}) on world {seed}: " + ", ".join(f"{k} {metrics[k]:.1f}" for k in SCORES), flush=True)
    table = []
    for (name, seed), group in runs.items():
        unseen = group[0]["unseen_classes"]
        table.append({
            "name": name, "world_seed": seed, "checkpoints": len(group),
            "mean": {k: float(np.mean([m[k] for m in group])) for k in SCORES},
            "spread": {k: float(np.ptp([m[k] for m in group]) / 2) for k in SCORES},
            "interval": {k: np.mean([m["interval"][k] for m in group], axis=0).tolist() for k in SCORES},
            "unseen_iou": {c: float(np.mean([m["per_class"][c] or 0.0 for m in group])) for c in unseen},
            "frames": args.streets * args.frames, "streets": args.streets})
    write_result("other_worlds", json_safe({"seconds": round(time.time() - started, 1), "checkpoints": args.checkpoints,
                                            "rows": table}), args.out.with_suffix(".json"))
    unseen = list(table[0]["unseen_iou"])
    lines = [f"# Students on worlds of other seeds ({args.streets} streets x {args.frames} frames each)", "",
             "Mean over the checkpoints of a name ± spread; bootstrap 95% interval over streets (mean of the "
             "checkpoints'). Full scan.", "",
             "| checkpoints | world seed | mIoU | seen | unseen | hIoU | " + " | ".join(unseen) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(unseen)]
    for row in table:
        cells = [f"{row['mean'][k]:.1f} ± {row['spread'][k]:.1f} [{row['interval'][k][0]:.1f}, "
                 f"{row['interval'][k][1]:.1f}]" for k in SCORES]
        lines.append(f"| {row['name']} ({row['checkpoints']}) | {row['world_seed']} | " + " | ".join(cells) + " | "
                     + " | ".join(f"{row['unseen_iou'][c]:.1f}" for c in unseen) + " |")
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
