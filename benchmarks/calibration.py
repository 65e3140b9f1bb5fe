"""Calibrated stacking (Chao et al., 2016): does subtracting gamma from the seen classes' logits
move points into the unseen classes that a student under-predicts? For trained students
(checkpoints), the validation metrics at each gamma, from one forward pass per frame.
Writes benchmarks/results/calibration.{json,md}.

    python benchmarks/calibration.py CHECKPOINT [CHECKPOINT ...] [--gammas 0 0.5 1 2 4]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, write_result  # noqa: E402


def main() -> None:
    from zeroseg3d.config import load_config_text
    from zeroseg3d.engine.builder import eval_set, load_student
    from zeroseg3d.engine.checkpoint import load_checkpoint
    from zeroseg3d.engine.evaluate import predict_logits, summarize_frames
    from zeroseg3d.metrics import confusion_matrix, json_safe
    from zeroseg3d.utils.atomic import atomic_write_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--gammas", type=float, nargs="+", default=[0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0])
    parser.add_argument("--split", default="val")
    args = parser.parse_args()
    started = time.time()
    rows = []
    for path in args.checkpoints:
        state = load_checkpoint(path)
        config = load_config_text(state["config"], f"{path} (stored config)")
        _, model = load_student(state, path, config)
        model.eval()
        dataset = eval_set(config, args.split)
        names, seen = dataset.frames.vocabulary.names, np.array(dataset.split.seen)
        shape = (len(dataset), len(names), len(names))
        full = {g: np.zeros(shape, np.int64) for g in args.gammas}
        view = {g: np.zeros(shape, np.int64) for g in args.gammas}
        for index in range(len(dataset)):
            sample = dataset[index]
            logits = predict_logits(model, state["text_embeddings"], sample)
            in_view = np.unique(sample.pairing.point_idx)
            for gamma in args.gammas:
                shifted = logits.clone()
                shifted[:, seen] -= gamma
                predicted = shifted.argmax(1).numpy()
                full[gamma][index] = confusion_matrix(predicted, sample.labels, len(names))
                view[gamma][index] = confusion_matrix(predicted[in_view], sample.labels[in_view], len(names))
        scale = float(model.logit_scale.detach().exp())
        for gamma in args.gammas:
            metrics = summarize_frames(full[gamma], view[gamma], dataset.frames.frame_ids,
                                       dataset.frames.frame_sequences, names, dataset.split)
            rows.append({"checkpoint": str(path), "logit_scale": scale, "gamma": gamma,
                         **{k: metrics[k] for k in ("miou", "miou_seen", "miou_unseen", "hiou")},
                         "unseen_per_class": {k: metrics["per_class"][k] for k in metrics["unseen_classes"]}})
            print(f"{path} gamma {gamma}: mIoU {metrics['miou']:.1f}, seen {metrics['miou_seen']:.1f}, "
                  f"unseen {metrics['miou_unseen']:.1f}, hIoU {metrics['hiou']:.1f}", flush=True)
    write_result("calibration", {"seconds": round(time.time() - started, 1), "rows": json_safe(rows)})
    lines = ["# Calibrated stacking: seen logits minus gamma (validation, full scan)", "",
             "| checkpoint | gamma | mIoU | seen | unseen | hIoU |", "|---|---|---|---|---|---|"]
    lines += [f"| {Path(r['checkpoint']).parent.parent.name} | {r['gamma']:g} | {r['miou']:.1f} | {r['miou_seen']:.1f} | "
              f"{r['miou_unseen']:.1f} | {r['hiou']:.1f} |" for r in rows]
    atomic_write_text(RESULTS / "calibration.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
