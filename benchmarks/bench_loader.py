"""Does training wait on data? The training data path (read from disk, draw the augmentation,
attach the teacher's cached outputs with the scan's pairing with the camera, collate; the
training step augments and voxelizes on its device) through the training loader, against the
training step rate that bench_student measured for the same voxel size and device (loader
target: 10x the step rate); and what one scan costs on one thread, stage by stage.

    python benchmarks/bench_loader.py [--scan-only]

The training samples carry a teacher cache of the shapes ViT-B-16 writes at KITTI's native
size (common.kitti_training_set); "geometry" samples stop before it, without augmentation.
``--scan-only`` prints the per-scan stages and writes nothing; it uses only what older
versions have too, so that ``PYTHONPATH=OLD/src python benchmarks/bench_loader.py --scan-only``
compares a checkout of another commit with this one.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

from common import (KITTI, RESULTS, BuiltFrames, kitti_training_set, loader_batches_per_s, target_line,
                    write_result)

BATCH_SIZE = 2
VOXEL = 0.05


def scan_stages(frames, training, repeat: int = 30) -> dict[str, float]:
    """Median milliseconds per scan on one thread: reading (and checking) a frame, voxelizing
    it, reading and building its geometry (pairing and occlusion included; timed alone, in a
    loop of its own, pairing's temporaries make it look slower than it is inside the sample),
    and the whole training sample of ``training`` (a SegmentationSet) in the first epoch,
    which computes and keeps the frame's pseudo labels, and after it; and what the training
    step then does to it on this CPU (augment and voxelize)."""
    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    from zeroseg3d.datasets.pipeline import SampleBuilder
    from zeroseg3d.geometry.voxelize import voxelize

    builder = SampleBuilder(VOXEL)
    loaded = [frames[i] for i in range(len(frames))]

    def first_epoch_sample(i):   # before what the frame's samples share is kept
        kept = getattr(training, "kept", None)
        if kept is not None:
            kept.path(training.frames.frame_ids[i % len(training)]).unlink(missing_ok=True)
        return training[i % len(training)]

    stages = {"read": lambda i: frames[i % len(frames)],
              "voxelize": lambda i: voxelize(loaded[i % len(loaded)].xyz, VOXEL),
              "read_and_build": lambda i: builder(frames[i % len(frames)]),
              "training_sample_first_epoch": first_epoch_sample,
              "training_sample": lambda i: training[i % len(training)]}
    try:   # what the training step does to a sample the workers left to its device
        from zeroseg3d.datasets.pipeline import collate, finish_batch

        batches = [collate([training[i]]) for i in range(len(training))]
        stages["step_augment_and_voxelize"] = lambda i: finish_batch(batches[i % len(batches)])
    except ImportError:
        pass
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            out = {}
            for name, stage in stages.items():
                for i in range(len(frames)):
                    stage(i)
                times = []
                for i in range(repeat):
                    start = time.perf_counter()
                    stage(i)
                    times.append(time.perf_counter() - start)
                out[name] = 1000 * float(np.median(times))
    finally:
        torch.set_num_threads(threads)
    return out


def main() -> str:
    from zeroseg3d.datasets.pipeline import SampleBuilder
    from zeroseg3d.datasets.semantickitti import SemanticKITTI

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scan-only", action="store_true", help="the per-scan stages only; writes nothing")
    args = parser.parse_args()
    if not (KITTI / "sequences").is_dir():
        return "loader: skipped (no ../shared/data)"
    frames = SemanticKITTI.from_root(KITTI, sequences=["00"])
    with tempfile.TemporaryDirectory() as cache_dir:
        training = kitti_training_set(VOXEL, cache_dir)
        stages = scan_stages(frames, training)
        line = "per scan, one thread: " + ", ".join(f"{k} {v:.1f} ms" for k, v in stages.items())
        if args.scan_only:
            return line
        print(line)
        kinds = {"geometry": BuiltFrames(frames, SampleBuilder(VOXEL)), "training": training}
        rates = {f"{kind}_workers_{w}": loader_batches_per_s(samples, BATCH_SIZE, w)
                 for kind, samples in kinds.items() for w in (0, 2)}
    student_path = RESULTS / "student.json"
    step_rate = None
    if student_path.is_file():
        rows = json.loads(student_path.read_text())["rows"]
        row = next(r for r in rows if r["backbone"] == "small" and r["voxel_size"] == VOXEL)
        step_rate = 1 / (row["train_step_s"] * BATCH_SIZE)   # the step was timed on one scan
    best = max(v for k, v in rates.items() if k.startswith("training"))
    write_result("loader", {"batch_size": BATCH_SIZE, "voxel_size": VOXEL, "scan_stages_ms": stages,
                            "batches_per_s": rates,
                            "train_steps_per_s": step_rate,
                            "loader_over_step_rate": None if step_rate is None else best / step_rate})
    if step_rate is None:
        return f"loader: {best:.2f} training batches/s (run bench_student first for the step rate)"
    return target_line(f"loader {best:.2f} training batches/s over training {step_rate:.3f} steps/s",
                       best / step_rate, 10, "x", lower_is_better=False)


if __name__ == "__main__":
    print(main())
    sys.exit(0)
