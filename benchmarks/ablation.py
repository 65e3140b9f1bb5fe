"""The ablation on the synthetic world, like the paper's: which part of the method does what.

Rows: seen-only (no teacher), + pseudo labels, + MCFA global, + MCFA local, + self-training
(the full method), annotation-free, and the teacher alone (its pseudo labels as predictions,
nothing outside the camera view). Each student row is trained with every seed; the table keeps
the mean and the spread. Uses the world, teacher and cache of a finished `make demo`
(runs/demo by default). Writes benchmarks/results/ablation.json and ablation.md.

    python benchmarks/ablation.py [--demo runs/demo] [--seeds 0 1] [--epochs 6 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS  # noqa: E402

NO_TEACHER = ["loss.pseudo=false", "loss.mcfa_global=false", "loss.mcfa_local=false"]
ROWS = {
    "seen_only": NO_TEACHER + ["train.epochs_self=0"],
    "pseudo": ["loss.mcfa_global=false", "loss.mcfa_local=false", "train.epochs_self=0"],
    "pseudo_global": ["loss.mcfa_local=false", "train.epochs_self=0"],
    "pseudo_global_local": ["train.epochs_self=0"],
    "full": [],
    "annotation_free": ["data.unseen_split=annotation_free"],
}
KEYS = ("miou", "miou_seen", "miou_unseen", "hiou")


def teacher_only(config) -> dict:
    """The teacher's cached point labels as the prediction; points it does not see count as
    missed (a false negative of their class, a false positive of none)."""
    from zeroseg3d.datasets import build_dataset
    from zeroseg3d.metrics import summarize
    from zeroseg3d.teacher.cache import TeacherCache
    from zeroseg3d.teacher.teacher import Teacher

    dataset = build_dataset(config.data, "val")
    split = dataset.vocabulary.split(config.data.unseen_split, config.data.unseen_classes)
    teacher = Teacher(config.teacher, dataset.vocabulary, config.data.pairing)
    cache = TeacherCache(config.teacher.cache_dir, teacher.key)
    c = dataset.vocabulary.num_classes
    full = np.zeros((c, c + 1), np.int64)   # last column: no prediction
    fov = np.zeros_like(full)
    for index, frame_id in enumerate(dataset.frame_ids):
        frame = dataset[index]
        predicted = cache.load(frame_id, frame.num_points)["point_label"].numpy().astype(np.int64)
        predicted = np.where(predicted >= 0, predicted, c)
        valid = frame.labels >= 0
        np.add.at(full, (frame.labels[valid], predicted[valid]), 1)
        seen_by_teacher = valid & (predicted < c)
        np.add.at(fov, (frame.labels[seen_by_teacher], predicted[seen_by_teacher]), 1)
    names = dataset.vocabulary.names
    metrics = summarize(full, names, split.seen, split.unseen)
    metrics["fov"] = summarize(fov, names, split.seen, split.unseen)
    return metrics


def summarize_rows(rows: list[dict]) -> dict:
    out = {}
    for key in KEYS:
        values = np.array([r[key] for r in rows], dtype=float)
        out[key] = (float(values.mean()), float(values.std()))
    fov = {}
    for key in KEYS:
        values = np.array([r["fov"][key] for r in rows], dtype=float)
        fov[key] = (float(values.mean()), float(values.std()))
    return {"mean": {k: v[0] for k, v in out.items()} | {"fov": {k: v[0] for k, v in fov.items()}},
            "std": {k: v[1] for k, v in out.items()} | {"fov": {k: v[1] for k, v in fov.items()}}}


def main() -> None:
    from zeroseg3d.engine.demo import FULL, world_config
    from zeroseg3d.engine.train import run_training

    parser = argparse.ArgumentParser()
    parser.add_argument("--demo", default="runs/demo")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, nargs=2, default=[6, 2], metavar=("GUIDED", "SELF"))
    parser.add_argument("--rows", nargs="+", default=list(ROWS))
    args = parser.parse_args()
    demo = Path(args.demo)
    schedule = [f"train.epochs_guided={args.epochs[0]}", f"train.epochs_self={args.epochs[1]}"]
    # rows without self-training train as many epochs, all guided, so that (d) -> (e) measures
    # self-training and not two more epochs
    same_length = [f"train.epochs_guided={sum(args.epochs)}"]
    table = []
    started = time.time()
    for name in args.rows:
        runs = []
        for seed in args.seeds:
            row = ROWS[name] + (same_length if "train.epochs_self=0" in ROWS[name] else [])
            config = world_config(demo, FULL, seed, schedule + row)
            result = run_training(config, demo / "ablation" / f"{name}_seed{seed}", progress=False)
            runs.append(result["metrics"])
            print(f"{name} seed {seed}: unseen {result['metrics']['miou_unseen']:.1f}, "
                  f"hIoU {result['metrics']['hiou']:.1f} ({time.time() - started:.0f} s)", flush=True)
        stats = summarize_rows(runs)
        table.append({"name": name, "seeds": args.seeds, **stats["mean"], "std": stats["std"]})
        _write(table, args, started)
    config = world_config(demo, FULL, args.seeds[0], schedule)
    teacher = teacher_only(config)
    table.append({"name": "teacher_only", "seeds": [], **{k: teacher[k] for k in KEYS},
                  "fov": {k: teacher["fov"][k] for k in KEYS}, "std": None})
    _write(table, args, started)


def _write(table, args, started) -> None:
    from zeroseg3d.metrics import json_safe
    from zeroseg3d.utils.atomic import atomic_write_text

    atomic_write_text(RESULTS / "ablation.json", json.dumps(json_safe(table), indent=2))
    lines = [f"# Ablation on the synthetic world ({len(args.seeds)} seeds, {args.epochs[0]}+{args.epochs[1]} epochs, "
             f"{time.time() - started:.0f} s); rows without self-training train {sum(args.epochs)} guided epochs", "",
             "| row | full: mIoU | seen | unseen | hIoU | view: mIoU | seen | unseen | hIoU |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in table:
        std = row.get("std") or {}
        def cell(value, spread):
            if value is None or np.isnan(value):
                return "-"  # undefined: e.g. seen mIoU without seen classes
            return f"{value:.1f}" + (f" ± {spread:.1f}" if spread is not None else "")

        full = " | ".join(cell(row[k], std.get(k)) for k in KEYS)
        view = " | ".join(cell(row["fov"][k], (std.get("fov") or {}).get(k)) for k in KEYS)
        lines.append(f"| {row['name']} | {full} | {view} |")
    atomic_write_text(RESULTS / "ablation.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
