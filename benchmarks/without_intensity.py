"""Scans without intensity: what the quick demo's student (model.in_channels=4) makes of them, and
a student trained on x, y, z alone (model.in_channels=3, the same world, teacher, seed and steps).

For each quick-demo folder ROOT/demo_quick_seedS (`python benchmarks/quick_demo.py` makes them),
on its validation streets (95% bootstrap intervals over streets):
- ``intensity``: the folder's student on the scans as they are;
- ``zeros``: the same student, every intensity 0 and given as 0 (what it was given before
  engine/evaluate.intensity_stand_in);
- ``stand_in``: the same scans, given the student's training mean (what zeroseg3d does now);
- ``xyz_student``: a student trained with model.in_channels=3 into the folder's student_xyz/
  (1.5 minutes each on 2 CPU cores; read back with --reuse).

    python benchmarks/without_intensity.py --seeds 0 1 2 3 4 [--reuse]

Writes benchmarks/results/without_intensity.{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import warnings
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).parent))
from common import REPO, RESULTS, with_interval, write_result  # noqa: E402

ROWS = {"intensity": "with intensity", "zeros": "intensity 0, given 0", "stand_in": "intensity 0, given the mean",
        "xyz_student": "x, y, z student"}


class _WithoutIntensity:
    """An evaluation set whose samples' intensities are all 0."""

    def __init__(self, dataset):
        self.dataset, self.frames, self.split = dataset, dataset.frames, dataset.split

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        sample = self.dataset[index]
        points = sample.points.copy()
        points[:, 3] = 0
        return dataclasses.replace(sample, points=points)


def measure(out: Path, seed: int, reuse: bool) -> dict:
    from zeroseg3d.engine import evaluate as evaluation
    from zeroseg3d.engine.builder import eval_set, load_student
    from zeroseg3d.engine.checkpoint import load_checkpoint
    from zeroseg3d.engine.demo import QUICK, world_config
    from zeroseg3d.engine.train import run_training
    from zeroseg3d.models.fold import fold_batch_norms

    config = world_config(out, QUICK, seed)
    state = load_checkpoint(out / "student" / "checkpoints" / "self.pt")
    _, model = load_student(state, out / "student" / "checkpoints" / "self.pt")
    model = fold_batch_norms(model)
    text = state["text_embeddings"]
    dataset = eval_set(config, "val")
    precision = config.train.precision

    def scores(metrics: dict) -> dict:
        return {"miou": metrics["miou"], "miou_unseen": metrics["miou_unseen"],
                "interval": metrics["interval"]["miou"], "interval_unseen": metrics["interval"]["miou_unseen"]}

    rows = {"intensity": scores(evaluation.evaluate(model, text, dataset, dataset.split, progress=False,
                                                    precision=precision))}
    blank = _WithoutIntensity(dataset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # one stand-in warning per scan
        with mock.patch.object(evaluation, "intensity_stand_in", lambda model, points: None):
            rows["zeros"] = scores(evaluation.evaluate(model, text, blank, dataset.split, progress=False,
                                                       precision=precision))
        rows["stand_in"] = scores(evaluation.evaluate(model, text, blank, dataset.split, progress=False,
                                                      precision=precision))
    rows["stand_in"]["value"] = float(model.input_norm.running_mean[3])
    folder = out / "student_xyz"
    if not (reuse and (folder / "metrics.json").is_file()):
        start = time.time()
        run_training(world_config(out, QUICK, seed, ["model.in_channels=3"]), folder, progress=False)
        print(f"seed {seed}: x, y, z student {time.time() - start:.0f} s", flush=True)
    rows["xyz_student"] = scores(json.loads((folder / "metrics.json").read_text()))
    return {"seed": seed, "folder": out.name, "rows": rows}


def table(results: list[dict]) -> list[str]:
    lines = ["| world | " + " | ".join(f"{label}: mIoU | unseen" for label in ROWS.values()) + " |",
             "|---|" + "---|---|" * len(ROWS)]
    for result in results:
        cells = []
        for row in ROWS:
            r = result["rows"][row]
            cells += [with_interval(r["miou"], r["interval"]), with_interval(r["miou_unseen"], r["interval_unseen"])]
        lines.append(f"| {result['seed']} | " + " | ".join(cells) + " |")
    means = [f"{sum(r['rows'][row][key] for r in results) / len(results):.1f}"
             for row in ROWS for key in ("miou", "miou_unseen")]
    lines.append("| mean | " + " | ".join(means) + " |")
    return lines


def main() -> None:
    from zeroseg3d.utils.atomic import atomic_write_text

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--root", type=Path, default=REPO / "runs", help="demo folders ROOT/demo_quick_seedS")
    parser.add_argument("--reuse", action="store_true", help="read back a trained x, y, z student")
    parser.add_argument("--out", type=Path, default=RESULTS / "without_intensity", help="result files, without suffix")
    args = parser.parse_args()
    started = time.time()
    results = []
    for seed in args.seeds:
        out = args.root / f"demo_quick_seed{seed}"
        if not (out / "student" / "checkpoints" / "self.pt").is_file():
            sys.exit(f"{out}: no quick demo there; run `python benchmarks/quick_demo.py --seeds {seed}` first")
        results.append(measure(out, seed, args.reuse))
        print(json.dumps(results[-1]), flush=True)
    write_result(args.out.stem, {"seconds": round(time.time() - started, 1), "results": results},
                 args.out.with_suffix(".json"))
    lines = ["# Scans without intensity (`python benchmarks/without_intensity.py`)", "",
             "The quick demo's student (model.in_channels=4) on its validation streets with their intensity, "
             "with every intensity 0 given as 0, and given its training mean (zeroseg3d's stand-in); a "
             "student trained on x, y, z alone (model.in_channels=3, the same world, teacher, seed and steps). "
             "95% bootstrap intervals over streets.", "", *table(results)]
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
