"""What bfloat16 inference changes: the demo's student evaluated on the world's validation
frames in float32 and in bf16 (models/sparse_conv.py's bfloat16 products, float32 sums), and
its labels and confidences on the real SemanticKITTI scans in both.

- mIoU / seen / unseen / hIoU of each, and bf16 - fp32 with a paired bootstrap interval over
  the validation streets (the same resamples for both);
- per point: the share of labels that agree and the largest confidence difference, on the
  validation frames and on every scan of ``--kitti`` (out of the student's training domain);
- evaluation time per validation frame in each precision (one pass each);
- predict time per KITTI scan in each precision (reading and voxelizing included), the
  precisions alternating over ``--rounds`` passes, medians.

    python benchmarks/inference_precision.py [--checkpoint runs/demo/student/checkpoints/self.pt]

Writes benchmarks/results/inference_precision.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import KITTI, REPO, write_result  # noqa: E402

PRECISIONS = ("fp32", "bf16")


def agreement(segmenter, frames) -> dict:
    """Label agreement and the largest confidence difference between the precisions."""
    same = total = 0
    largest = 0.0
    for frame in frames:
        segmenter.precision = "fp32"
        a = segmenter.predict(frame)
        segmenter.precision = "bf16"
        b = segmenter.predict(frame)
        same += int((a.labels == b.labels).sum())
        total += len(a.labels)
        largest = max(largest, float(np.abs(a.scores - b.scores).max()))
    return {"points": total, "labels_agree_pct": 100 * same / total, "max_confidence_diff": largest}


def main() -> None:
    import torch

    from zeroseg3d.datasets import open_path
    from zeroseg3d.engine.builder import eval_set
    from zeroseg3d.engine.evaluate import evaluate
    from zeroseg3d.engine.predict import Segmenter
    from zeroseg3d.metrics import PER_FRAME, SCORES, interval, paired_difference
    from zeroseg3d.utils.device import native_bf16

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default="runs/demo/student/checkpoints/self.pt")
    parser.add_argument("--kitti", default=str(KITTI))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    checkpoint = Path(args.checkpoint).resolve()
    if not checkpoint.is_file():
        print(f"inference precision: skipped ({checkpoint} missing: run `make demo` first)")
        return
    segmenter = Segmenter.from_checkpoint(checkpoint, "cpu")
    validation = eval_set(segmenter.config, "val")
    split = validation.split
    metrics, evaluate_s = {}, {}
    for p in PRECISIONS:
        start = time.perf_counter()
        metrics[p] = evaluate(segmenter.network, segmenter.text_embeddings, validation, split, "cpu",
                              progress=False, precision=p)
        evaluate_s[p] = (time.perf_counter() - start) / len(validation)
    change = paired_difference(metrics["bf16"][PER_FRAME], metrics["fp32"][PER_FRAME], split.seen, split.unseen)
    result = {
        "checkpoint": str(checkpoint.relative_to(REPO)) if checkpoint.is_relative_to(REPO) else checkpoint.name,
        "native_bf16": native_bf16(), "threads": torch.get_num_threads(),
        "validation_frames": len(validation),
        "scores": {p: {k: metrics[p][k] for k in SCORES} for p in PRECISIONS},
        "bf16_minus_fp32": {k: {"value": metrics["bf16"][k] - metrics["fp32"][k], "interval": interval(change[k])}
                            for k in SCORES},
        "validation": agreement(segmenter, (validation.frames[i] for i in range(len(validation)))),
        "evaluate_s_per_frame": evaluate_s,
    }
    kitti = open_path(args.kitti) if Path(args.kitti).is_dir() else None
    if kitti is not None:
        scans = [kitti[i] for i in range(len(kitti))]
        result["kitti"] = {"scans": len(scans), **agreement(segmenter, scans)}
        times = {p: [] for p in PRECISIONS}
        for _ in range(args.rounds):
            for p in PRECISIONS:
                segmenter.precision = p
                for index in range(len(kitti)):
                    start = time.perf_counter()
                    segmenter.predict(kitti[index])
                    times[p].append(time.perf_counter() - start)
        result["kitti"]["predict_s_per_scan"] = {p: float(np.median(times[p])) for p in PRECISIONS}
        result["kitti"]["fp32_over_bf16"] = (result["kitti"]["predict_s_per_scan"]["fp32"]
                                             / result["kitti"]["predict_s_per_scan"]["bf16"])
    for p in PRECISIONS:
        s = result["scores"][p]
        print(f"{p}: mIoU {s['miou']:.1f}, seen {s['miou_seen']:.1f}, unseen {s['miou_unseen']:.1f}, "
              f"hIoU {s['hiou']:.1f}")
    d = result["bf16_minus_fp32"]
    print("bf16 - fp32: " + ", ".join(f"{k} {d[k]['value']:+.2f} {d[k]['interval']}" for k in SCORES))
    for where in ("validation", "kitti"):
        if where in result:
            r = result[where]
            print(f"{where}: labels agree on {r['labels_agree_pct']:.3f}% of {r['points']} points, "
                  f"confidence differs by {r['max_confidence_diff']:.3f} at most")
    print("evaluate per validation frame: " + ", ".join(f"{p} {evaluate_s[p]:.3f} s" for p in PRECISIONS))
    if kitti is not None:
        t = result["kitti"]["predict_s_per_scan"]
        print(f"predict per KITTI scan: fp32 {t['fp32']:.3f} s, bf16 {t['bf16']:.3f} s "
              f"({result['kitti']['fp32_over_bf16']:.2f}x)")
    print(write_result("inference_precision", result))


if __name__ == "__main__":
    main()
