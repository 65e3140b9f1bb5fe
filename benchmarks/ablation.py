"""The ablation on the synthetic world, like the paper's: which part of the method does what.

Rows, each adding one thing to the row before: seen-only (no teacher), + pseudo labels,
+ MCFA global, + MCFA local, + self-training (`full`: the seed paper's method), + pseudo labels
consolidated over time (`temporal`), + over objects (`objects`), + the teacher's most probable
unseen class as the label of an unlabelled point (`objects_among`: the defaults); then
annotation-free (no 3D labels: pseudo labels per point, then voted over the objects standing
out of the ground) and the teacher alone (its pseudo labels as predictions,
nothing outside the camera view). Rows without
self-training train as many steps, all CLIP-guided, so that a row measures its component and
not extra steps. Each student row is trained with every seed and evaluated on the demo's
validation streets; the table keeps the mean over seeds, their spread, the bootstrap interval
over streets, and the change from the row before with its paired bootstrap interval (the same
streets resampled for both rows, averaged over seeds). Uses the world, teacher and cache of a
finished `make demo` (runs/demo by default). Writes benchmarks/results/ablation.{json,md}.

    python benchmarks/ablation.py [--demo runs/demo] [--seeds 0 1] [--epochs 6 2] [--parallel 2 --threads 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, train_students  # noqa: E402

from zeroseg3d.engine.demo import SEEN_ONLY  # noqa: E402
from zeroseg3d.metrics import PER_FRAME, SCORES  # noqa: E402

NO_TEMPORAL = ["teacher.temporal.enabled=false"]
TEMPORAL = ["teacher.temporal.enabled=true"]
NO_OBJECTS = ["loss.pseudo_object_radius=0"]
ARGMAX = ["loss.pseudo_among=all"]   # the teacher's argmax as the pseudo label (the rule before objects_among)
NO_SELF = ["train.epochs_self=0"]
ROWS = {
    "seen_only": SEEN_ONLY + NO_SELF + NO_TEMPORAL + NO_OBJECTS + ARGMAX,
    "pseudo": ["loss.mcfa_global=false", "loss.mcfa_local=false"] + NO_SELF + NO_TEMPORAL + NO_OBJECTS + ARGMAX,
    "pseudo_global": ["loss.mcfa_local=false"] + NO_SELF + NO_TEMPORAL + NO_OBJECTS + ARGMAX,
    "pseudo_global_local": NO_SELF + NO_TEMPORAL + NO_OBJECTS + ARGMAX,
    "full": NO_TEMPORAL + NO_OBJECTS + ARGMAX,
    "temporal": TEMPORAL + NO_OBJECTS + ARGMAX,
    "objects": TEMPORAL + ["loss.pseudo_object_radius=0.5"] + ARGMAX,
    "objects_among": TEMPORAL + ["loss.pseudo_object_radius=0.5", "loss.pseudo_among=unseen"],  # the defaults
    # no 3D labels: the pseudo labels per point, then voted over the objects that stand out of the ground
    "annotation_free_points": ["data.unseen_split=annotation_free"] + TEMPORAL + NO_OBJECTS + ARGMAX,
    "annotation_free": ["data.unseen_split=annotation_free"] + TEMPORAL + ["loss.pseudo_object_radius=0.5"] + ARGMAX,
}
# the row each row adds to (its change is measured against that one)
PREVIOUS = {"pseudo": "seen_only", "pseudo_global": "pseudo", "pseudo_global_local": "pseudo_global",
            "full": "pseudo_global_local", "temporal": "full", "objects": "temporal",
            "objects_among": "objects", "annotation_free": "annotation_free_points"}


def teacher_only(config) -> dict:
    """The teacher's cached point labels as the prediction; points it does not see count as
    missed (a false negative of their class, a false positive of none)."""
    from zeroseg3d.datasets import build_dataset
    from zeroseg3d.engine.builder import class_split, teacher_and_cache
    from zeroseg3d.teacher.run import pseudo_label_quality

    dataset = build_dataset(config.data, "val")
    _, cache = teacher_and_cache(config, dataset.vocabulary)
    report = pseudo_label_quality(dataset, cache, class_split(config, dataset.vocabulary))
    return {**report["full"], "fov": {k: v for k, v in report.items() if k not in ("full", PER_FRAME)}}


def seed_statistics(runs: list[dict]) -> dict:
    """Mean and spread over seeds of each score (full scan and camera view), and the mean of
    the seeds' bootstrap intervals."""
    out: dict = {"mean": {}, "std": {}, "interval": {}}
    for view in ("full", "fov"):
        for key in SCORES:
            summaries = [r if view == "full" else r["fov"] for r in runs]
            values = np.array([s[key] for s in summaries], dtype=float)
            bounds = np.array([s["interval"][key] or [np.nan, np.nan] for s in summaries], dtype=float)
            name = key if view == "full" else f"fov_{key}"
            out["mean"][name] = float(values.mean())
            out["std"][name] = float(values.std())
            out["interval"][name] = bounds.mean(0).tolist()
    return out


def paired_change(runs: list[dict], before: list[dict], split, samples: int = 1000) -> dict:
    """The change from ``before`` to ``runs`` (same seeds, same frames), averaged over seeds,
    with a paired bootstrap interval over streets: {key: [change, low, high]}."""
    from zeroseg3d.metrics import interval, paired_difference

    out = {}
    for view in ("full", "fov"):
        changes = [paired_difference(a[PER_FRAME], b[PER_FRAME], split.seen, split.unseen, view, samples)
                   for a, b in zip(runs, before)]
        for key in SCORES:
            pairs = [((a if view == "full" else a["fov"])[key], (b if view == "full" else b["fov"])[key])
                     for a, b in zip(runs, before)]
            name = key if view == "full" else f"fov_{key}"
            if any(x is None or y is None for x, y in pairs):   # e.g. seen mIoU without seen classes
                out[name] = None
                continue
            bounds = interval(np.mean([c[key] for c in changes], axis=0))
            out[name] = None if bounds is None else [float(np.mean([x - y for x, y in pairs])), *bounds]
    return out


def main() -> None:
    from zeroseg3d.engine.builder import class_split
    from zeroseg3d.engine.demo import FULL, world_config

    parser = argparse.ArgumentParser()
    parser.add_argument("--demo", default="runs/demo")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, nargs=2, default=[6, 2], metavar=("GUIDED", "SELF"))
    parser.add_argument("--rows", nargs="*", default=list(ROWS), help="rows to train (none: only the teacher row)")
    parser.add_argument("--parallel", type=int, default=1, help="students trained at once")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per student")
    args = parser.parse_args()
    demo = Path(args.demo).resolve()
    schedule = [f"train.epochs_guided={args.epochs[0]}", f"train.epochs_self={args.epochs[1]}"]
    same_length = [f"train.epochs_guided={sum(args.epochs)}"]
    # rows of an earlier run that this one does not redo are kept
    previous = json.loads((RESULTS / "ablation.json").read_text()) if (RESULTS / "ablation.json").is_file() else []
    table = [r for r in previous if r["name"] in ROWS and r["name"] not in args.rows]
    results: dict[str, list[dict]] = {}
    started = time.time()
    jobs = [(name, schedule + ROWS[name] + (same_length if "train.epochs_self=0" in ROWS[name] else []), seed)
            for name in args.rows for seed in args.seeds]
    for name, seed, metrics in train_students(demo, jobs, "ablation", args.parallel, args.threads):
        if metrics is None:
            continue
        print(f"{name} seed {seed}: mIoU {metrics['miou']:.1f}, unseen {metrics['miou_unseen']:.1f}, "
              f"hIoU {metrics['hiou']:.1f} ({time.time() - started:.0f} s)", flush=True)
        results.setdefault(name, []).append(metrics)
        if len(results[name]) < len(args.seeds):
            continue
        results[name].sort(key=lambda r: r["seed"])
        table = [r for r in table if r["name"] != name] + [row_entry(name, results[name], args.seeds)]
        # a row's change needs the row before: computed for every finished row whose row before is there
        for entry in table:
            before = PREVIOUS.get(entry["name"])
            runs = results.get(entry["name"])
            earlier = results.get(before) if before in results and len(results[before]) == len(args.seeds) else None
            if runs and len(runs) == len(args.seeds):
                earlier = earlier or stored_runs(demo, before, args.seeds)
                if earlier:
                    # the row's own seen/unseen split (annotation-free rows: every class unseen)
                    split = class_split(world_config(demo, FULL, args.seeds[0], schedule + ROWS[entry["name"]]))
                    entry["change"] = {"from": before, **paired_change(runs, earlier, split)}
        table.sort(key=lambda r: list(ROWS).index(r["name"]))
        _write(table, args, started)
    config = world_config(demo, FULL, args.seeds[0], schedule)
    teacher = teacher_only(config)
    table = [r for r in table if r["name"] != "teacher_only"]
    table.append({"name": "teacher_only", "seeds": [],
                  "mean": {**{k: teacher[k] for k in SCORES}, **{f"fov_{k}": teacher["fov"][k] for k in SCORES}},
                  "std": None,
                  "interval": {**{k: teacher["interval"][k] for k in SCORES},
                               **{f"fov_{k}": teacher["fov"]["interval"][k] for k in SCORES}},
                  "per_class": teacher["fov"]["per_class"]})
    _write(table, args, started)


def row_entry(name: str, runs: list[dict], seeds: list[int]) -> dict:
    return {"name": name, "seeds": seeds, **seed_statistics(runs),
            "per_class": {c: float(np.mean([r["per_class"][c] or 0.0 for r in runs])) for c in runs[0]["per_class"]},
            "unseen_classes": runs[0]["unseen_classes"]}


def stored_runs(demo: Path, name: str | None, seeds: list[int]) -> list[dict] | None:
    """The metrics of row ``name`` trained by an earlier run of this benchmark with the same
    seeds (for the paired change of a row run alone), or None."""
    from zeroseg3d.engine.evaluate import load_metrics

    if name is None:
        return None
    runs = []
    for seed in seeds:
        folder = demo / "ablation" / f"{name}_seed{seed}"
        if not (folder / "metrics.json").is_file():
            return None
        runs.append(load_metrics(folder))
    return runs if all(PER_FRAME in r for r in runs) else None


def _write(table, args, started) -> None:
    from zeroseg3d.metrics import json_safe
    from zeroseg3d.utils.atomic import atomic_write_text

    atomic_write_text(RESULTS / "ablation.json", json.dumps(json_safe(table), indent=2))
    lines = [f"# Ablation on the synthetic world ({len(args.seeds)} seeds, {args.epochs[0]}+{args.epochs[1]} epochs, "
             f"{time.time() - started:.0f} s); rows without self-training train {sum(args.epochs)} guided epochs", "",
             "Mean over seeds ± their spread; in brackets the bootstrap 95% interval over streets (mean of the "
             "seeds'). Change: from the row before, with its paired bootstrap interval.", "",
             "| row | full: mIoU | seen | unseen | hIoU | view: mIoU | seen | unseen | hIoU | change: mIoU | unseen | hIoU |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in table:
        std = row.get("std") or {}

        def cell(key):
            value = row["mean"].get(key)
            if value is None or np.isnan(value):
                return "-"  # undefined: e.g. seen mIoU without seen classes
            bounds = row["interval"].get(key)
            return (f"{value:.1f}" + (f" ± {std[key]:.1f}" if key in std else "")
                    + (f" [{bounds[0]:.1f}, {bounds[1]:.1f}]" if bounds and not np.isnan(bounds[0]) else ""))

        def change(key):
            value = (row.get("change") or {}).get(key)
            return "-" if value is None else f"{value[0]:+.1f} [{value[1]:+.1f}, {value[2]:+.1f}]"

        cells = [cell(k) for k in SCORES] + [cell(f"fov_{k}") for k in SCORES]
        cells += [change(k) for k in ("miou", "miou_unseen", "hiou")]
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    atomic_write_text(RESULTS / "ablation.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
