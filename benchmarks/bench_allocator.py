"""What keeping freed memory (utils/allocator.keep_freed_memory, as `zeroseg3d predict` and
`evaluate` run) changes for the small student's inference on the real 124k-point scan at
``--voxel``: processes with glibc's default allocator and with freed memory kept alternate
(``--pairs`` of each), each timing ``--repeat`` inferences (read, voxelize, run, labels) after
two warm-ups and counting their page faults; the medians per process, and the median of the
paired ratios.

    python benchmarks/bench_allocator.py [--pairs 8] [--precision auto] [--voxel 0.05]

Writes benchmarks/results/allocator.json (allocator_PRECISION.json for another precision).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from common import KITTI, RESULTS, write_result

ALLOCATORS = ("default", "kept")


def measure(allocator: str, precision: str, voxel: float, repeat: int) -> dict:
    if allocator == "kept":
        from zeroseg3d.utils.allocator import keep_freed_memory

        keep_freed_memory()
    import resource

    import torch

    from common import random_student, timed_runs
    from zeroseg3d.datasets.pipeline import SampleBuilder, collate
    from zeroseg3d.datasets.semantickitti import SemanticKITTI
    from zeroseg3d.models.fold import fold_batch_norms
    from zeroseg3d.utils.device import autocast

    dataset = SemanticKITTI.from_root(KITTI, sequences=["00"])
    model, text = random_student("small")
    model = fold_batch_norms(model)
    builder = SampleBuilder(voxel, augment=None)

    def infer():
        with torch.no_grad(), autocast("cpu", precision, inference=True):
            model(collate([builder(dataset[0])]), text)["logits"].argmax(1)

    infer()
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    runs = timed_runs(infer, repeat=repeat, warmup=1)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / (repeat + 1)
    return {"allocator": allocator, "predict_s": statistics.median(runs), "runs": runs, "page_faults_per_predict": faults}


def main() -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--voxel", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=6)
    args = parser.parse_args()
    if not (KITTI / "sequences").is_dir():
        return "allocator: skipped (no ../shared/data)"
    pairs = []
    for _ in range(args.pairs):
        pair = {}
        for allocator in ALLOCATORS:
            out = subprocess.run([sys.executable, __file__, "--child", allocator, args.precision, str(args.voxel),
                                  str(args.repeat)], capture_output=True, text=True, check=True,
                                 cwd=str(RESULTS.parent))
            pair[allocator] = json.loads(out.stdout.strip().splitlines()[-1])
        pairs.append(pair)
    ratios = [p["default"]["predict_s"] / p["kept"]["predict_s"] for p in pairs]
    summary = {a: {"predict_s": statistics.median(p[a]["predict_s"] for p in pairs),
                   "page_faults_per_predict": statistics.median(p[a]["page_faults_per_predict"] for p in pairs)}
               for a in ALLOCATORS}
    write_result("allocator" if args.precision == "auto" else f"allocator_{args.precision}", {"scan": "SemanticKITTI 00/000000", "backbone": "small", "voxel_size": args.voxel,
                               "precision": args.precision, "summary": summary,
                               "default_over_kept": {"median": statistics.median(ratios), "pairs": ratios,
                                                     "kept_faster_in": sum(r > 1 for r in ratios)},
                               "pairs": pairs})
    return (f"predict {summary['default']['predict_s']:.3f} s with {summary['default']['page_faults_per_predict']:.0f} "
            f"page faults -> {summary['kept']['predict_s']:.3f} s with {summary['kept']['page_faults_per_predict']:.0f} "
            f"kept; paired ratio {statistics.median(ratios):.2f}x (kept faster in {sum(r > 1 for r in ratios)} "
            f"of {len(ratios)})")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        print(json.dumps(measure(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))))
    else:
        print(main())
