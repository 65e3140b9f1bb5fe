"""The teacher at real scale: time per frame and cache bytes per frame at the native image
sizes of SemanticKITTI (one 1241x376 camera) and nuScenes (six 1600x900 cameras), ViT-B-16 with
random weights (the cost does not depend on the weights), and the totals they project to for
SemanticKITTI train (19,130 frames) and nuScenes train (28,130 samples).

The frames are real where the data is: the three SemanticKITTI scans of ../shared/data with
their real calibration and a random image of the native size (the images are not in the
sample data). A nuScenes sample is the first of those scans cut to 34,720 points (a
nuScenes sweep's size) seen by six cameras with nuScenes' intrinsics (f 1266 px) facing 0,
+-55, +-110 and 180 degrees. Each frame goes through the teacher's own per-frame path
(Teacher.frame_outputs: the dense CLIP forward, the pairing, the per-point probabilities)
and its own cache writer (TeacherCache.save); the file's size is what the cache holds. The
cache's size is set by the image features' grid cells that some point's pixel reads
(teacher.short_side, fp16), the per-point probabilities (the points some camera sees x the
classes, fp16) and the point-pixel pairs.

    python benchmarks/bench_teacher_cache.py [--short-sides 376 224] [--nuscenes-short-sides 900 448 224]

Writes benchmarks/results/teacher_cache.json (teacher_cache_gpu.json on a GPU).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import KITTI, write_result  # noqa: E402

KITTI_TRAIN_FRAMES = 19_130
NUSCENES_TRAIN_SAMPLES = 28_130
NUSCENES_POINTS = 34_720
BUDGET_GB = 100


def nuscenes_like(frame):
    """A nuScenes-sized sample from a real scan: 34,720 of its points, six 1600x900 cameras."""
    from zeroseg3d.datasets.frame import Camera, Frame

    rng = np.random.default_rng(0)
    keep = np.sort(rng.choice(frame.num_points, NUSCENES_POINTS, replace=False))
    K = np.array([[1266.0, 0, 800], [0, 1266.0, 450], [0, 0, 1]])
    cameras = []
    for yaw in (0, 55, -55, 110, -110, 180):
        a = np.deg2rad(yaw)
        # LiDAR x forward, y left, z up -> camera x right, y down, z forward, turned by yaw
        forward = np.array([np.cos(a), np.sin(a), 0.0])
        right = np.array([np.sin(a), -np.cos(a), 0.0])
        down = np.array([0.0, 0.0, -1.0])
        T = np.eye(4)
        T[:3, :3] = np.stack([right, down, forward])
        image = rng.integers(0, 255, (900, 1600, 3), dtype=np.uint8)
        cameras.append(Camera(f"CAM_{yaw}", K, T, (1600, 900), image=image))
    return Frame("nuscenes_like", frame.points[keep], cameras)


def measure(frames, vocabulary, short_side: int, repeat: int) -> dict:
    import torch

    from zeroseg3d.teacher.cache import TeacherCache
    from zeroseg3d.teacher.config import TeacherConfig
    from zeroseg3d.teacher.teacher import Teacher

    with tempfile.TemporaryDirectory() as tmp:
        config = TeacherConfig(model="ViT-B-16", random_init=True, readout="clearclip", short_side=short_side,
                               batch_size=1, cache_dir=str(Path(tmp) / "text"))
        teacher = Teacher(config, vocabulary)
        cache = TeacherCache(Path(tmp) / "cache", teacher.key)
        sync = torch.cuda.synchronize if teacher.device == "cuda" else (lambda: None)
        teacher.frame_outputs(frames[0])         # warm-up
        seconds, sizes, in_view = [], [], []
        for index in range(repeat):
            frame = frames[index % len(frames)]
            sync()
            start = time.perf_counter()
            outputs = teacher.frame_outputs(frame)
            sync()
            seconds.append(time.perf_counter() - start)
            sizes.append(cache.save(frame.frame_id, outputs).stat().st_size)
            in_view.append(int(outputs["view_index"].shape[0]))
        grids = outputs["patch_grid"].tolist()
    return {"short_side": short_side, "feature_grid": grids[0], "cameras": len(grids),
            "cells_kept": int(outputs["patch_cell"].shape[0]), "pairs": int(outputs["pair_point"].shape[0]),
            "s_per_frame": float(np.median(seconds)), "runs_s": seconds,
            "cache_mb_per_frame": float(np.median(sizes)) / 2**20, "points_in_view": int(np.median(in_view)),
            "points": int(frames[0].num_points), "device": teacher.device}


def main() -> None:
    from zeroseg3d.datasets.semantickitti import SemanticKITTI

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short-sides", type=int, nargs="+", default=[376, 224])
    parser.add_argument("--nuscenes-short-sides", type=int, nargs="+", default=[900, 448, 224])
    parser.add_argument("--repeat", type=int, default=3, help="frames timed per setting (after a warm-up)")
    parser.add_argument("--nuscenes-repeat", type=int, default=1)
    args = parser.parse_args()
    if not (KITTI / "sequences").is_dir():
        print("teacher_cache: skipped (no ../shared/data)")
        return
    dataset = SemanticKITTI.from_root(KITTI, sequences=["00"])
    kitti = []
    for i in range(len(dataset)):
        frame = dataset[i]
        for camera in frame.cameras:
            width, height = camera.image_size
            camera.image = np.random.default_rng(i).integers(0, 255, (height, width, 3), dtype=np.uint8)
        kitti.append(frame)
    rows = []
    for name, frames, sides, total, repeat in (
            ("semantickitti", kitti, args.short_sides, KITTI_TRAIN_FRAMES, args.repeat),
            ("nuscenes", [nuscenes_like(kitti[0])], args.nuscenes_short_sides, NUSCENES_TRAIN_SAMPLES, args.nuscenes_repeat)):
        for side in sides:
            row = {"dataset": name, **measure(frames, dataset.vocabulary, side, repeat), "train_frames": total}
            row["projected_cache_gb"] = row["cache_mb_per_frame"] * total / 1024
            row["projected_hours"] = row["s_per_frame"] * total / 3600
            row["within_budget"] = row["projected_cache_gb"] <= BUDGET_GB
            rows.append(row)
            print(f"{name} short side {side} (grid {row['feature_grid'][0]}x{row['feature_grid'][1]} x "
                  f"{row['cameras']} cameras): {row['s_per_frame']:.2f} s/frame on {row['device']}, "
                  f"{row['cache_mb_per_frame']:.2f} MB/frame ({row['points_in_view']} points in view, "
                  f"{row['cells_kept']} grid cells kept) -> "
                  f"train split {row['projected_cache_gb']:.0f} GB, {row['projected_hours']:.1f} h", flush=True)
    gpu = rows[0]["device"] == "cuda"
    write_result("teacher_cache_gpu" if gpu else "teacher_cache",
                 {"model": "ViT-B-16 (random weights)", "readout": "clearclip", "budget_gb": BUDGET_GB, "rows": rows})


if __name__ == "__main__":
    main()
