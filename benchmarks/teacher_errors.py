"""Does a student copy its teacher's mistakes? On the validation frames of the demo's world,
on the points the teacher labels (inside the camera view), the student's prediction where the
teacher is wrong (copies the teacher's wrong class, gets the point right, or errs otherwise)
and where it is right (keeps it right), overall and on the points of unseen classes.
Checkpoints come as NAME=PATH; a name given several times (one checkpoint per training seed)
is reported as the mean over its checkpoints. Writes benchmarks/results/teacher_errors.{json,md}.

    python benchmarks/teacher_errors.py pseudo=runs/demo/ablation/pseudo_seed0/checkpoints/last.pt \\
        pseudo_global_local=runs/demo/ablation/pseudo_global_local_seed0/checkpoints/last.pt
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, measure_named, write_result  # noqa: E402

KEYS = ("teacher_wrong", "copies", "corrects", "other_error", "keeps_right")


def counts(predicted: np.ndarray, teacher: np.ndarray, truth: np.ndarray) -> dict:
    """Point counts of KEYS on points where the teacher gives a label and the truth is known."""
    wrong = teacher != truth
    return {"points": len(truth), "teacher_wrong": int(wrong.sum()),
            "copies": int((wrong & (predicted == teacher)).sum()),
            "corrects": int((wrong & (predicted == truth)).sum()),
            "other_error": int((wrong & (predicted != teacher) & (predicted != truth)).sum()),
            "keeps_right": int((~wrong & (predicted == truth)).sum())}


def shares(total: dict) -> dict:
    """Counts -> percentages: of the points (teacher_wrong), of the teacher's wrong points
    (copies, corrects, other_error), of its right points (keeps_right)."""
    wrong, right = total["teacher_wrong"], total["points"] - total["teacher_wrong"]
    out = {"points": total["points"], "teacher_wrong": 100.0 * wrong / max(1, total["points"])}
    out.update({k: 100.0 * total[k] / max(1, wrong) for k in ("copies", "corrects", "other_error")})
    out["keeps_right"] = 100.0 * total["keeps_right"] / max(1, right)
    return out


def measure(path: str, demo: Path) -> dict:
    """The counts of one checkpoint over the validation frames: all points and unseen ones."""
    import torch

    from zeroseg3d.config import load_config_text
    from zeroseg3d.engine.builder import eval_set, load_student, teacher_and_cache
    from zeroseg3d.engine.checkpoint import load_checkpoint
    from zeroseg3d.engine.demo import FULL, world_config
    from zeroseg3d.engine.evaluate import predict_logits
    from zeroseg3d.errors import DataError

    state = load_checkpoint(path)
    config = load_config_text(state["config"], f"{path} (stored config)")
    _, model = load_student(state, path, config)
    model.eval()
    dataset = eval_set(config, "val")
    _, cache = teacher_and_cache(world_config(demo, FULL, 0), dataset.frames.vocabulary)
    unseen = np.array(dataset.split.unseen)
    total = {"all": [], "unseen": []}
    with torch.no_grad():
        for index in range(len(dataset)):
            sample = dataset[index]
            frame = dataset.frames[index]
            outputs = cache.load(frame.frame_id, frame.num_points)
            if outputs is None:
                raise DataError(cache.path(frame.frame_id), f"frame {frame.frame_id} is missing from the teacher cache")
            teacher = outputs["point_label"].numpy().astype(np.int64)
            predicted = predict_logits(model, state["text_embeddings"], sample).argmax(1).numpy()
            keep = (teacher >= 0) & (sample.labels >= 0)
            total["all"].append(counts(predicted[keep], teacher[keep], sample.labels[keep]))
            keep &= np.isin(sample.labels, unseen)
            total["unseen"].append(counts(predicted[keep], teacher[keep], sample.labels[keep]))
    return {view: shares({k: sum(c[k] for c in frames) for k in frames[0]}) for view, frames in total.items()}


def main() -> None:
    from zeroseg3d.metrics import json_safe
    from zeroseg3d.utils.atomic import atomic_write_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", metavar="NAME=PATH")
    parser.add_argument("--demo", default="runs/demo")
    parser.add_argument("--out", default=str(RESULTS / "teacher_errors"), help="result files, without suffix")
    args = parser.parse_args()
    started = time.time()
    rows = []
    for name, paths, runs in measure_named(args.checkpoints, lambda path: measure(path, Path(args.demo))):
        row = {"name": name, "checkpoints": paths}
        for view in ("all", "unseen"):
            row[view] = {k: float(np.mean([r[view][k] for r in runs])) for k in runs[0][view]}
        rows.append(row)
        print(name, {v: {k: round(x, 1) for k, x in row[v].items()} for v in ("all", "unseen")}, flush=True)
    out = Path(args.out)
    write_result(out.stem, {"seconds": round(time.time() - started, 1), "rows": json_safe(rows)},
                 out.with_suffix(".json"))
    lines = ["# Does the student copy its teacher's mistakes? (validation frames, points the teacher labels)", "",
             "Percent: teacher wrong of the points; copies / corrects / other error of the teacher's wrong points; "
             "keeps right of its right points. Mean over each row's checkpoints.", "",
             "| row | points | teacher wrong | copies | corrects | other error | keeps right "
             "| unseen: teacher wrong | copies | corrects | other error | keeps right |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        cells = [f"{row['all']['points']:.0f}"] + [f"{row['all'][k]:.1f}" for k in KEYS]
        cells += [f"{row['unseen'][k]:.1f}" for k in KEYS]
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
