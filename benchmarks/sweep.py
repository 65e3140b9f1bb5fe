"""Student settings side by side on the demo's world: which change moves the accuracy.

Each row is a list of config overrides on top of the demo's configuration (``base`` is the
demo itself); every row is trained with every seed, several runs at once (a GPU machine with
many cores runs a dozen in the time the 2-core CPU runs one), and evaluated on the demo's 60
validation frames. The table keeps the mean over seeds, their spread, and each row's change
from ``base`` (or the row ``--against`` names) with a paired bootstrap interval over streets
(the same resampled streets for both), scored with the row's own seen/unseen split. With ``--prepare``, a missing world or teacher cache is made first (the teacher's
weights must be there: runs/demo/teacher), and so is the training frames' cache of a row with
its own ``teacher.cache_dir`` (``readout_scales2``). With ``--reuse``, runs already finished in
DEMO/sweep/ROW_seedS are read instead of trained again. Writes
benchmarks/results/sweep[-SUFFIX].{json,md}.

    python benchmarks/sweep.py [--demo runs/demo] [--rows base steps2x] [--seeds 0 1] [--parallel 4]
    python benchmarks/sweep.py --rows annotation_free annotation_free_no_flips --against annotation_free
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from ablation import ROWS as ABLATION_ROWS  # noqa: E402
from ablation import paired_change, row_entry  # noqa: E402
from common import RESULTS, device_description, train_students, write_result  # noqa: E402

SCHEDULE_2X = ["train.epochs_guided=12", "train.epochs_self=4"]
SCHEDULE_4X = ["train.epochs_guided=24", "train.epochs_self=8"]
# without the mirror images of the street (front <-> back, left <-> right) the demo trains on
NO_FLIPS = ["data.augment.enabled=false"]
ROWS = {
    "base": [],
    "no_input_norm": ["model.input_norm=false"],
    "steps2x": SCHEDULE_2X,
    "steps4x": SCHEDULE_4X,
    "minkunet18": ["model.backbone=minkunet18"],
    "minkunet18_steps4x": ["model.backbone=minkunet18", *SCHEDULE_4X],
    "voxel010": ["data.voxel_size=0.1"],
    "pseudo_weight10": ["loss.pseudo_weight=10"],
    "lr006": ["train.lr=0.006"],
    "lr0015": ["train.lr=0.0015"],
    "lr005": ["train.lr=0.005"],
    "no_local": ["loss.mcfa_local=false"],
    "no_mcfa": ["loss.mcfa_local=false", "loss.mcfa_global=false"],
    "no_self": ["train.epochs_guided=8", "train.epochs_self=0"],
    "logit_scale30": ["model.logit_scale_init=30"],
    "batch2": ["train.batch_size=2"],
    "prior025": ["loss.pseudo_prior_power=0.25"],
    # object votes counting every point's confidence alone (the default weighs them by the
    # teacher's unseen-class mass squared)
    "no_vote_mass": ["loss.pseudo_vote_mass_power=0"],
    # the weighted votes' winner, not the unweighted one's (loss.pseudo_vote_agree off)
    "no_vote_agree": ["loss.pseudo_vote_agree=false"],
    "no_flips": NO_FLIPS,
    # the teacher's read-out before scale 2 (scales 0.5 and 1, windows overlapping by half);
    # a row that changes the teacher's outputs has its own cache ({demo}: the demo folder;
    # --prepare fills it)
    "readout_scales2": ["teacher.scales=[0.5,1.0]", "teacher.window_stride=16",
                        "teacher.cache_dir={demo}/teacher/cache_scales2_s16"],
    # the default's scales with windows overlapping by half: 4x the teacher's time
    "scales3_s16": ["teacher.window_stride=16", "teacher.cache_dir={demo}/teacher/cache_scales3"],
    # readout_scales2 with the features averaged on the grid of scale 1 instead of 0.5 (the
    # first scale's grid is the output's)
    "fine_grid": ["teacher.scales=[1.0,0.5]", "teacher.window_stride=16",
                  "teacher.cache_dir={demo}/teacher/cache_fine_grid"],
    "annotation_free": ABLATION_ROWS["annotation_free"],
    "annotation_free_no_flips": ABLATION_ROWS["annotation_free"] + NO_FLIPS,
    # the student's sparse convolutions in bfloat16 on the CPU (models/sparse_conv.py)
    "bf16": ["train.precision=bf16"],
    # twice the training streets (8 more, 28-35, of the same world; --prepare makes them) at the
    # same number of steps: half the epochs over twice the frames
    "streets16": [f"data.sequences={[f'{i:02d}' for i in [*range(8), *range(28, 36)]]}",
                  "train.epochs_guided=3", "train.epochs_self=1"],
}
# rough cost of a row in base runs, so that the longest start first
COST = {"steps2x": 2, "steps4x": 4, "minkunet18": 2, "minkunet18_steps4x": 8, "voxel010": 1.5}


def row_overrides(name: str, demo: Path) -> list[str]:
    """A row's config overrides with its demo folder filled in."""
    return [o.replace("{demo}", str(demo)) for o in ROWS[name]]


def prepare(demo: Path, workers: int, rows: list[str]) -> None:
    """The world and the teacher cache of a demo whose teacher is already trained, the streets a
    row trains on beyond the demo's (made with the world's seed), and the training frames'
    cache of each row with such streets or its own teacher.cache_dir (a row that changes the
    teacher's outputs without one would overwrite the demo's cache)."""
    from zeroseg3d.engine import teacher_cache
    from zeroseg3d.engine.demo import FULL, cache_teacher, missing_streets, prepare_world_and_teacher, world_config
    from zeroseg3d.world.generate import generate_world

    world = demo / "world"
    # a world already there keeps its own seed (demos of other seeds); a missing one is made as runs/demo's
    seed = json.loads((world / "world.json").read_text())["seed"] if (world / "world.json").is_file() else 0
    config = world_config(demo, FULL, seed)
    if not Path(config.teacher.checkpoint).is_file():
        raise SystemExit(f"{config.teacher.checkpoint}: no teacher; run `make demo` first")
    stages: dict = {}
    prepare_world_and_teacher(demo, FULL, seed, stages, config.teacher, progress=False, workers=workers)
    cache_teacher(config, stages, progress=False)
    for name in rows:
        overrides = row_overrides(name, demo)
        row_config = world_config(demo, FULL, seed, overrides)
        extra = [s for s in row_config.data.sequences if s not in config.data.sequences]
        for start, count in missing_streets(world, extra):
            generate_world(world, count, FULL.train_frames, seed=seed, start=start, workers=workers, progress=False)
        if extra or any(o.startswith("teacher.cache_dir=") for o in overrides):
            start = time.time()
            teacher_cache.cache_teacher(row_config, ("train",), temporal=True, progress=False)
            stages[f"teacher_cache_{name}"] = round(time.time() - start, 1)
    print("prepared:", stages, flush=True)


def summarise(rows: dict[str, list[dict]], seeds: list[int], demo: Path, against: str = "base") -> list[dict]:
    from zeroseg3d.engine.builder import class_split
    from zeroseg3d.engine.demo import FULL, world_config

    base = sorted(rows.get(against) or [], key=lambda r: r["seed"])
    table = []
    for name in ROWS:
        runs = sorted(rows.get(name) or [], key=lambda r: r["seed"])
        if len(runs) < len(seeds):
            continue
        entry = {**row_entry(name, runs, seeds), "overrides": ROWS[name],
                 "seconds": (None if None in [r["seconds"] for r in runs]
                             else float(np.mean([r["seconds"] for r in runs]))),
                 "steps": runs[0]["steps"]}
        if name != against and len(base) == len(runs):
            # the row's own seen/unseen split (annotation-free rows: every class unseen)
            split = class_split(world_config(demo, FULL, 0, row_overrides(name, demo)))
            entry["change"] = {"from": against, **paired_change(runs, base, split)}
        table.append(entry)
    return table


def write(table: list[dict], path: Path, started: float, seeds: list[int], against: str = "base") -> None:
    from zeroseg3d.metrics import json_safe
    from zeroseg3d.utils.atomic import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    write_result(path.stem, {"seconds": round(time.time() - started, 1), "rows": json_safe(table)}, path.with_suffix(".json"))
    lines = [f"# Student settings on the demo's world ({len(seeds)} seeds, {device_description().get('gpu', 'CPU')})", "",
             f"Mean over seeds ± spread, 60 validation frames of 20 streets, full scan; change from `{against}` with its "
             "paired bootstrap interval over streets.", "",
             "| row | steps | s/run | mIoU | seen | unseen | hIoU | view mIoU | change: mIoU | seen | unseen | hIoU |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in table:
        mean, std = row["mean"], row["std"]

        def change(key, row=row):
            value = (row.get("change") or {}).get(key)
            return "-" if value is None else f"{value[0]:+.1f} [{value[1]:+.1f}, {value[2]:+.1f}]"

        seconds = "-" if row["seconds"] is None else f"{row['seconds']:.0f}"
        lines.append(f"| {row['name']} | {row['steps'] or '-'} | {seconds} | "
                     + " | ".join(f"{mean[k]:.1f} ± {std[k]:.1f}" for k in ("miou", "miou_seen", "miou_unseen", "hiou",
                                                                            "fov_miou"))
                     + " | " + " | ".join(change(k) for k in ("miou", "miou_seen", "miou_unseen", "hiou")) + " |")
    atomic_write_text(path.with_suffix(".md"), "\n".join(lines) + "\n")


def main() -> None:
    from zeroseg3d.engine.evaluate import load_metrics

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", default="runs/demo")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--parallel", type=int, default=1, help="runs at once")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per run")
    parser.add_argument("--workers", type=int, default=0, help="data-loading processes per run")
    parser.add_argument("--prepare", type=int, default=0, metavar="WORKERS",
                        help="make a missing world and teacher cache first, with this many processes")
    parser.add_argument("--out", default=str(RESULTS / "sweep"), help="result files, without suffix")
    parser.add_argument("--against", default="base", choices=list(ROWS),
                        help="the row every other row's change is measured from")
    parser.add_argument("--reuse", action="store_true",
                        help="read the runs already finished in DEMO/sweep/ROW_seedS instead of training them again")
    parser.add_argument("--base-from", metavar="FOLDER",
                        help="take the --against row from runs already trained with its configuration, "
                             "DEMO/FOLDER_seedS (e.g. ablation/objects_among), instead of training it")
    args = parser.parse_args()
    demo = Path(args.demo).resolve()
    started = time.time()
    if args.prepare:
        prepare(demo, args.prepare, args.rows)
    jobs = sorted(((name, row_overrides(name, demo), seed) for name in args.rows for seed in args.seeds),
                  key=lambda j: -COST.get(j[0], 1))
    rows: dict[str, list[dict]] = {}

    def trained(folder: Path, seed: int, **extra) -> dict:
        """A run finished before, as the table takes it (its time and steps not known)."""
        return {**load_metrics(folder), "seed": seed, "seconds": None, "steps": None, **extra}

    if args.base_from:
        rows[args.against] = [trained(demo / f"{args.base_from}_seed{seed}", seed, **{"from": args.base_from})
                              for seed in args.seeds]
        jobs = [job for job in jobs if job[0] != args.against]
    if args.reuse:
        done = [job for job in jobs if (demo / "sweep" / f"{job[0]}_seed{job[2]}" / "metrics.json").is_file()]
        for name, _, seed in done:
            rows.setdefault(name, []).append(trained(demo / "sweep" / f"{name}_seed{seed}", seed))
        jobs = [job for job in jobs if job not in done]
        if done:
            write(summarise(rows, args.seeds, demo, args.against), Path(args.out), started, args.seeds, args.against)
    for name, seed, metrics in train_students(demo, jobs, "sweep", args.parallel, args.threads, args.workers):
        if metrics is None:
            continue
        rows.setdefault(name, []).append(metrics)
        print(f"{name} seed {seed}: mIoU {metrics['miou']:.1f}, seen {metrics['miou_seen']:.1f}, unseen "
              f"{metrics['miou_unseen']:.1f}, hIoU {metrics['hiou']:.1f} ({metrics['seconds']:.0f} s; "
              f"{time.time() - started:.0f} s in)", flush=True)
        write(summarise(rows, args.seeds, demo, args.against), Path(args.out), started, args.seeds, args.against)

if __name__ == "__main__":
    main()
