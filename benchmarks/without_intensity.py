"""Scans without intensity: what the quick demo's student (model.in_channels=4) makes of them, a
student trained on x, y, z alone (model.in_channels=3) and one trained with a quarter of its
scans' intensity dropped (data.augment.intensity_dropout=0.25), each of the same world, teacher,
seed and steps.

For each quick-demo folder ROOT/demo_quick_seedS (`python benchmarks/quick_demo.py` makes them),
on its validation streets (95% bootstrap intervals over streets):
- ``intensity``: the folder's student on the scans as they are;
- ``zeros``: the same student, every intensity 1e-30 (0 to the network, but not a scan without
  intensity): what it was given for such scans before ZeroShotSegmentor.voxel_features' stand-in;
- ``stand_in``: every intensity 0, given the student's training mean there (what zeroseg3d does);
- ``xyz_student``: a student trained with model.in_channels=3 into the folder's student_xyz/;
- ``dropout`` and ``dropout_blank``: a student trained with data.augment.intensity_dropout=0.25
  into student_intensity_dropout/, on the scans as they are and with every intensity 0.
Each student takes about 1.5 minutes on 2 CPU cores; --reuse reads trained ones back.

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

sys.path.insert(0, str(Path(__file__).parent))
from common import REPO, RESULTS, with_interval, write_result  # noqa: E402

ROWS = {"intensity": "with intensity", "zeros": "intensity 0, given 0", "stand_in": "intensity 0, given the mean",
        "xyz_student": "x, y, z student", "dropout": "dropout student, with intensity",
        "dropout_blank": "dropout student, intensity 0"}
DROPOUT = 0.25


class _Intensity:
    """An evaluation set whose samples' intensities are all ``value``."""

    def __init__(self, dataset, value: float):
        self.dataset, self.frames, self.split, self.value = dataset, dataset.frames, dataset.split, value

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        sample = self.dataset[index]
        points = sample.points.copy()
        points[:, 3] = self.value
        return dataclasses.replace(sample, points=points)


def measure(out: Path, seed: int, reuse: bool) -> dict:
    from zeroseg3d.engine.builder import eval_set, load_student
    from zeroseg3d.engine.checkpoint import load_checkpoint
    from zeroseg3d.engine.demo import QUICK, world_config
    from zeroseg3d.engine.evaluate import evaluate
    from zeroseg3d.engine.train import run_training
    from zeroseg3d.models.fold import fold_batch_norms

    config = world_config(out, QUICK, seed)
    dataset = eval_set(config, "val")

    def student(path: Path):
        state = load_checkpoint(path)
        return fold_batch_norms(load_student(state, path)[1]), state["text_embeddings"]

    def scores(model, text, data) -> dict:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # one warning per scan without intensity
            metrics = evaluate(model, text, data, dataset.split, progress=False, precision=config.train.precision)
        return {"miou": metrics["miou"], "miou_unseen": metrics["miou_unseen"],
                "interval": metrics["interval"]["miou"], "interval_unseen": metrics["interval"]["miou_unseen"]}

    def trained(overrides: list[str], folder: Path, label: str):
        if not (reuse and (folder / "checkpoints" / "self.pt").is_file()):
            start = time.time()
            run_training(world_config(out, QUICK, seed, overrides), folder, progress=False)
            print(f"seed {seed}: {label} {time.time() - start:.0f} s", flush=True)
        return student(folder / "checkpoints" / "self.pt")

    model, text = student(out / "student" / "checkpoints" / "self.pt")
    rows = {"intensity": scores(model, text, dataset), "zeros": scores(model, text, _Intensity(dataset, 1e-30)),
            "stand_in": scores(model, text, _Intensity(dataset, 0.0))}
    rows["stand_in"]["value"] = float(model.input_norm.running_mean[3])
    model, text = trained(["model.in_channels=3"], out / "student_xyz", "x, y, z student")
    rows["xyz_student"] = scores(model, text, dataset)
    model, text = trained([f"data.augment.intensity_dropout={DROPOUT}"], out / "student_intensity_dropout",
                          "intensity dropout student")
    rows["dropout"] = scores(model, text, dataset)
    rows["dropout_blank"] = scores(model, text, _Intensity(dataset, 0.0))
    return {"seed": seed, "folder": out.name, "dropout": DROPOUT, "rows": rows}


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
             "student trained on x, y, z alone (model.in_channels=3) and one trained with "
             f"data.augment.intensity_dropout={DROPOUT}, with and without intensity (each the same world, teacher, "
             "seed and steps). 95% bootstrap intervals over streets.", "", *table(results)]
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
