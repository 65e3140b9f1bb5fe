"""The quick demo (`zeroseg3d demo --quick`, the suite's end-to-end test) on several seeds, with
the references that set the floors of its checks (engine/demo.demo_checks): its student's
seen-only twin (the same world, streets, seed and epochs, nothing from the teacher) and its
teacher before training (the same architecture and seed, no step taken), read out on the same
held-out streets; with --train-seeds, students of other training seeds on the same world and
teacher (how far the test's figure moves with the training draw alone).

Runs each seed's quick demo in its own process into ROOT/demo_quick_seedS (4-6 minutes on 2 CPU
cores), then the seen-only student into that folder's seen_only/ (1-1.5 minutes), the students of
the other training seeds into student_train_seedK/ (1.5 minutes each) and the untrained
teacher's quality; with --reuse a finished part is read back instead. Writes
benchmarks/results/quick_demo.{json,md} with the demo's checks per seed.

    python benchmarks/quick_demo.py --seeds 0 1 2 [--train-seeds 1 2] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import REPO, RESULTS, with_interval, write_result  # noqa: E402


def untrained_teacher_quality(out: Path, seed: int) -> dict:
    """The demo teacher's 2D quality before its first step, read out as the trained one was."""
    from dataclasses import replace

    from zeroseg3d.engine.demo import QUICK, world_config
    from zeroseg3d.world.clip_quality import evaluate_world_clip
    from zeroseg3d.world.clip_training import train_world_clip
    from zeroseg3d.world.config import ClipTrainConfig
    from zeroseg3d.world.generate import HELDOUT_SET, IMAGE_SET

    checkpoint = out / "untrained_teacher" / "zs3d-world-clip.safetensors"
    train_world_clip([out / "world" / IMAGE_SET], checkpoint, ClipTrainConfig(steps=0, seed=seed), progress=False)
    readout = replace(world_config(out, QUICK, seed).teacher, model_config=str(checkpoint.with_suffix(".json")),
                      checkpoint=str(checkpoint))
    return evaluate_world_clip(checkpoint, [out / "world" / HELDOUT_SET], seed=seed, teacher=readout)


def trained(config, folder: Path, reuse: bool, label: str) -> dict:
    """The metrics of the student ``config`` trains into ``folder`` (read back with reuse)."""
    from zeroseg3d.engine.train import run_training

    if not (reuse and (folder / "metrics.json").is_file()):
        start = time.time()
        run_training(config, folder, progress=False)
        print(f"{label}: {time.time() - start:.0f} s", flush=True)
    return json.loads((folder / "metrics.json").read_text())


def run_seed(seed: int, out: Path, reuse: bool, train_seeds: list[int]) -> dict:
    from zeroseg3d.engine.demo import (QUICK, UNSEEN_FLOOR, demo_checks, seen_only_config, student_recognises_unseen,
                                       teacher_checks, world_config)

    if not (reuse and (out / "metrics.json").is_file()):
        command = [sys.executable, "-m", "zeroseg3d", "demo", "--quick", "--seed", str(seed), "--out", str(out)]
        print(" ".join(command), flush=True)
        subprocess.run(command, check=True)
    metrics = json.loads((out / "metrics.json").read_text())
    seen_only = trained(seen_only_config(out, QUICK, seed), out / "seen_only", reuse, f"seed {seed}: seen-only student")
    others = []
    for k in (k for k in train_seeds if k != seed):
        other = trained(world_config(out, QUICK, seed, [f"run.seed={k}"]), out / f"student_train_seed{k}", reuse,
                        f"seed {seed}: student of training seed {k}")
        others.append({"train_seed": k, "miou": other["miou"], "miou_unseen": other["miou_unseen"],
                       "interval_unseen": other["interval"]["miou_unseen"],
                       "above_floor": student_recognises_unseen(other)})
    untrained = untrained_teacher_quality(out, seed)
    teacher = metrics["teacher"]["pixels_2d"]
    losses = json.loads((out / "teacher" / "zs3d-world-clip.train.json").read_text())
    control_unseen = seen_only["interval"]["miou_unseen"]
    return {
        "seed": seed, "folder": out.name, "seconds": metrics["seconds"], "stages": metrics["stages"],
        "student": {"miou": metrics["miou"], "miou_unseen": metrics["miou_unseen"],
                    "interval_unseen": metrics["interval"]["miou_unseen"]},
        "seen_only": {"miou": seen_only["miou"], "miou_unseen": seen_only["miou_unseen"],
                      "interval_unseen": control_unseen, "below_floor": control_unseen[1] < UNSEEN_FLOOR},
        "other_training_seeds": others,
        "teacher": {k: teacher[k] for k in ("crop_accuracy", "pixel_accuracy", "pixel_miou", "chance")},
        "untrained_teacher": {k: untrained[k] for k in ("crop_accuracy", "pixel_accuracy", "pixel_miou")},
        "untrained_teacher_checks": teacher_checks(untrained, None),
        "teacher_i2t_loss": {"first": losses["loss_curve"][0][0], "final": losses["final_losses"]["i2t"]},
        "checks": demo_checks(teacher, losses, metrics),
    }


def table(rows: list[dict]) -> list[str]:
    lines = ["| seed | minutes (teacher training) | teacher: crop accuracy / pixel mIoU (untrained) | student mIoU "
             "| student unseen | seen-only unseen | other training seeds: unseen | demo's checks |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t, u = r["teacher"], r["untrained_teacher"]
        passed = sum(r["checks"].values())
        lines.append(f"| {r['seed']} | {r['seconds'] / 60:.1f} ({r['stages']['teacher_training'] / 60:.1f}) | "
                     f"{t['crop_accuracy']:.2f} / {100 * t['pixel_miou']:.1f} ({u['crop_accuracy']:.2f} / "
                     f"{100 * u['pixel_miou']:.1f}) | {r['student']['miou']:.1f} | "
                     f"{with_interval(r['student']['miou_unseen'], r['student']['interval_unseen'])} | "
                     f"{with_interval(r['seen_only']['miou_unseen'], r['seen_only']['interval_unseen'])} | "
                     + ("; ".join(f"{o['train_seed']}: {with_interval(o['miou_unseen'], o['interval_unseen'])}"
                                  for o in r["other_training_seeds"]) or "-")
                     + f" | {passed} of {len(r['checks'])} |")
    return lines


def main() -> None:
    from zeroseg3d.metrics import json_safe
    from zeroseg3d.utils.atomic import atomic_write_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--root", type=Path, default=REPO / "runs", help="demo folders ROOT/demo_quick_seedS")
    parser.add_argument("--train-seeds", type=int, nargs="*", default=[],
                        help="also train students of these training seeds on each seed's world and teacher")
    parser.add_argument("--reuse", action="store_true", help="read back a seed's finished demo and students")
    parser.add_argument("--out", type=Path, default=RESULTS / "quick_demo", help="result files, without suffix")
    args = parser.parse_args()
    rows = [run_seed(seed, args.root / f"demo_quick_seed{seed}", args.reuse, args.train_seeds) for seed in args.seeds]
    write_result(args.out.stem, {"rows": json_safe(rows)}, args.out.with_suffix(".json"))
    lines = ["# The quick demo and its references (`python benchmarks/quick_demo.py`)", "",
             "3 validation frames of 3 streets, full scan; 95% bootstrap intervals over streets. Pixel mIoU in %, on "
             "the held-out streets' images, read out as the pseudo labels are.", "", *table(rows)]
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
