"""Does training wait on data? The training data path (read from disk, pair with the camera
and occlusion test, voxelize, collate) through a DataLoader, against the training step rate
that bench_student measured for the same voxel size and device (loader target: 10x the step
rate)."""

from __future__ import annotations

import json
import sys
import time

from common import KITTI, RESULTS, target_line, write_result

BATCH_SIZE = 2
VOXEL = 0.05


class RepeatedFrames:
    """``length`` samples cycling over the real frames, built as training builds them."""

    def __init__(self, dataset, builder, length: int):
        self.dataset, self.builder, self.length = dataset, builder, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        return self.builder(self.dataset[index % len(self.dataset)])


def batches_per_second(dataset, workers: int) -> float:
    import torch

    from zeroseg3d.datasets.pipeline import collate

    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH_SIZE, collate_fn=collate, num_workers=workers)
    iterator = iter(loader)
    next(iterator)  # start the workers before timing
    start = time.perf_counter()
    count = sum(1 for _ in iterator)
    return count / (time.perf_counter() - start)


def main() -> str:
    from zeroseg3d.datasets.pipeline import SampleBuilder
    from zeroseg3d.datasets.semantickitti import SemanticKITTI

    if not (KITTI / "sequences").is_dir():
        return "loader: skipped (no ../shared/data)"
    frames = SemanticKITTI.from_root(KITTI, sequences=["00"])
    dataset = RepeatedFrames(frames, SampleBuilder(VOXEL), 2 * BATCH_SIZE * 12)
    rates = {f"workers_{w}": batches_per_second(dataset, w) for w in (0, 2)}
    student_path = RESULTS / "student.json"
    step_rate = None
    if student_path.is_file():
        rows = json.loads(student_path.read_text())["rows"]
        row = next(r for r in rows if r["backbone"] == "small" and r["voxel_size"] == VOXEL)
        step_rate = 1 / (row["train_step_s"] * BATCH_SIZE)   # the step was timed on one scan
    best = max(rates.values())
    write_result("loader", {"batch_size": BATCH_SIZE, "voxel_size": VOXEL, "batches_per_s": rates,
                            "train_steps_per_s": step_rate,
                            "loader_over_step_rate": None if step_rate is None else best / step_rate})
    if step_rate is None:
        return f"loader: {best:.2f} batches/s (run bench_student first for the step rate)"
    return target_line(f"loader {best:.2f} batches/s over training {step_rate:.3f} steps/s", best / step_rate,
                       10, "x", lower_is_better=False)


if __name__ == "__main__":
    print(main())
    sys.exit(0)
