"""The whole demo on worlds of other seeds: `zeroseg3d demo --seed S` generates world S, trains
its teacher and its student with seed S, and evaluates on that world's 60 validation frames.
Does the method hold when everything (streets, objects, teacher, student) is drawn anew?

Runs each seed's demo in its own process into ROOT/demo_seedS (about 14 minutes each on 2 CPU
cores), or with --reuse tabulates the finished ones already there (their metrics.json's time is
recorded), and writes benchmarks/results/demo_seeds.{json,md}: per seed the student's full-scan
and camera-view scores with their 95% bootstrap intervals over streets, every unseen class, the
teacher inside the camera view and the student's paired lead over it; then the mean and range
over the seeds.

    python benchmarks/demo_seeds.py --seeds 1 2 3 [--reuse]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import REPO, RESULTS, with_interval, write_result  # noqa: E402

from zeroseg3d.metrics import SCORES  # noqa: E402


def run_seed(seed: int, out: Path, reuse: bool) -> dict:
    metrics_path = out / "metrics.json"
    if not (reuse and metrics_path.is_file()):
        command = [sys.executable, "-m", "zeroseg3d", "demo", "--seed", str(seed), "--out", str(out)]
        print(" ".join(command), flush=True)
        subprocess.run(command, check=True)
    metrics = json.loads(metrics_path.read_text())
    teacher = metrics["teacher"]["points_3d_camera_view"]
    return {
        "seed": seed, "folder": str(out), "reused": reuse,
        "metrics_written": time.strftime("%Y-%m-%d %H:%M", time.localtime(metrics_path.stat().st_mtime)),
        "seconds": metrics["seconds"],
        # a demo run into a folder that already holds its world and teacher skips those stages
        "stages_reused": [name for name, seconds in metrics["stages"].items() if seconds == 0.0],
        "full": {k: metrics[k] for k in SCORES}, "full_interval": {k: metrics["interval"][k] for k in SCORES},
        "view": {k: metrics["fov"][k] for k in SCORES},
        "unseen_classes": {name: metrics["per_class"][name] for name in metrics["unseen_classes"]},
        "teacher_crop_accuracy": metrics["teacher"]["pixels_2d"]["crop_accuracy"],
        "teacher_view": {k: teacher[k] for k in SCORES},
        "student_minus_teacher_view": metrics["student_minus_teacher"],
    }


def table(rows: list[dict]) -> list[str]:
    unseen = list(rows[0]["unseen_classes"])
    lines = ["| seed | mIoU | seen | unseen | hIoU | " + " | ".join(unseen) +
             " | view: mIoU | view: unseen | teacher in view: mIoU | unseen | student - teacher in view: unseen | "
             "minutes |",
             "|---|---|---|---|---|" + "---|" * len(unseen) + "---|---|---|---|---|---|"]
    for r in rows:
        lead = r["student_minus_teacher_view"]["miou_unseen"]
        lines.append(f"| {r['seed']} | " + " | ".join(with_interval(r["full"][k], r["full_interval"][k]) for k in SCORES)
                     + " | " + " | ".join(f"{v:.1f}" for v in r["unseen_classes"].values())
                     + f" | {r['view']['miou']:.1f} | {r['view']['miou_unseen']:.1f} | {r['teacher_view']['miou']:.1f}"
                     f" | {r['teacher_view']['miou_unseen']:.1f} | {with_interval(lead[0], lead[1:])} | "
                     f"{r['seconds'] / 60:.1f} |")
    if len(rows) > 1:
        def spread(values) -> str:
            return f"{np.mean(values):.1f} ({min(values):.1f}-{max(values):.1f})"
        lines.append("| mean (range) | " + " | ".join(spread([r["full"][k] for r in rows]) for k in SCORES)
                     + " | " + " | ".join(spread([r["unseen_classes"][c] for r in rows]) for c in unseen)
                     + f" | {spread([r['view']['miou'] for r in rows])} | {spread([r['view']['miou_unseen'] for r in rows])}"
                     f" | {spread([r['teacher_view']['miou'] for r in rows])}"
                     f" | {spread([r['teacher_view']['miou_unseen'] for r in rows])}"
                     f" | {spread([r['student_minus_teacher_view']['miou_unseen'][0] for r in rows])}"
                     f" | {spread([r['seconds'] / 60 for r in rows])} |")
    return lines


def main() -> None:
    from zeroseg3d.metrics import json_safe
    from zeroseg3d.utils.atomic import atomic_write_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--root", type=Path, default=REPO / "runs", help="demo folders ROOT/demo_seedS")
    parser.add_argument("--reuse", action="store_true", help="tabulate a seed's finished demo instead of rerunning it")
    parser.add_argument("--out", type=Path, default=RESULTS / "demo_seeds", help="result files, without suffix")
    args = parser.parse_args()
    rows = [run_seed(seed, args.root / f"demo_seed{seed}", args.reuse) for seed in args.seeds]
    write_result(args.out.stem, {"rows": json_safe(rows)}, args.out.with_suffix(".json"))
    lines = ["# The whole demo on worlds of other seeds (`zeroseg3d demo --seed S`)", "",
             "Each seed draws its own world, teacher and student; 60 validation frames of 20 streets of that world, "
             "full scan unless marked view; 95% bootstrap intervals over streets.", "", *table(rows)]
    reused = [f"seed {r['seed']}: {', '.join(r['stages_reused'])}" for r in rows if r["stages_reused"]]
    if reused:
        lines += ["", "Minutes are the run's own; these stages were already done in its folder and skipped: "
                  + "; ".join(reused) + "."]
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
