"""Student step time, inference time and peak memory on a real 120k-point scan; end-to-end
predict latency. Each setting runs in its own process so that peak memory is its own; two
rounds alternate the settings' processes, and the times are the medians over the rounds. On a
GPU (when torch sees one) in bf16, with the network-only rate in scans/s. ``precision`` is the
student's (utils/device.py): auto (bf16 on a GPU; on the CPU fp32 in training and, where the CPU
has bfloat16 units, bf16 at inference), fp32 or bf16. The small student also runs with the C
allocator keeping freed memory, as `zeroseg3d predict` does (utils/allocator.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from common import KITTI, RESULTS, merge_rounds, target_line, write_result

ROUNDS = 2
# (backbone, voxel size, precision, allocator): "kept" as in `zeroseg3d predict`
# (utils/allocator.keep_freed_memory), "default" as a library user's process
SETTINGS = [("small", 0.05, "auto", "default"), ("small", 0.1, "auto", "default"),
            ("small", 0.05, "auto", "kept"), ("small", 0.1, "auto", "kept"),
            ("minkunet18", 0.05, "auto", "default"), ("minkunet18", 0.1, "auto", "default"),
            ("small", 0.05, "fp32", "default"), ("small", 0.1, "fp32", "default"),
            ("small", 0.05, "bf16", "default"), ("small", 0.1, "bf16", "default")]


def measure(backbone: str, voxel: float, precision: str = "auto", allocator: str = "default") -> dict:
    import copy

    import numpy as np
    import torch
    import torch.nn.functional as F

    from common import peak_rss_mb, random_student, timed, timed_runs
    from zeroseg3d.datasets.pipeline import SampleBuilder, collate
    from zeroseg3d.datasets.semantickitti import SemanticKITTI
    from zeroseg3d.utils.device import autocast, to_device
    from zeroseg3d.utils.optim import adamw
    from zeroseg3d.models.fold import fold_batch_norms
    from zeroseg3d.models.sparse_conv import compute_dtype

    if allocator == "kept":
        from zeroseg3d.utils.allocator import keep_freed_memory

        keep_freed_memory()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    gpu = device == "cuda"
    dataset = SemanticKITTI.from_root(KITTI, sequences=["00"])
    frame = dataset[0]
    model, text = random_student(backbone, device)
    builder = SampleBuilder(voxel, augment=None)
    batch = to_device(collate([builder(frame)]), device)
    labels = torch.from_numpy(np.clip(frame.labels, 0, None)).to(device)
    optimizer = adamw(model.parameters(), 1e-3, 0.01)   # as zeroseg3d's Trainer steps
    sync = torch.cuda.synchronize if gpu else (lambda: None)

    def step():
        with autocast(device, precision):
            out = model(batch, text)
            loss = F.cross_entropy(out["logits"].float(), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        sync()

    runner = fold_batch_norms(copy.deepcopy(model))   # as zeroseg3d's Segmenter predicts

    def infer():  # read the scan from disk, voxelize, run, take the labels
        with torch.no_grad(), autocast(device, precision, inference=True):
            runner(to_device(collate([builder(dataset[0])]), device), text)["logits"].argmax(1).cpu()

    def network_only():  # the scan already voxelized and on the device
        with torch.no_grad(), autocast(device, precision, inference=True):
            runner(batch, text)["logits"].argmax(1)
        sync()

    if gpu:
        torch.cuda.reset_peak_memory_stats()
    inference_runs = timed_runs(infer, repeat=5)
    network_runs = timed_runs(network_only, repeat=5)
    inference_rss = peak_rss_mb()
    runner = None   # the copy goes before training
    model.train()
    train_step = timed(step, repeat=3)
    with autocast(device, precision, inference=True):
        inference_dtype = str(compute_dtype() if not gpu else torch.get_autocast_dtype("cuda")).removeprefix("torch.")
    row = {"backbone": backbone, "voxel_size": voxel, "device": device, "precision": precision, "allocator": allocator,
           "inference_dtype": inference_dtype, "points": frame.num_points,
           "voxels": int(len(batch["voxel_coords"])), "parameters": sum(p.numel() for p in model.parameters()),
           "predict_s_end_to_end_runs": inference_runs, "network_s_runs": network_runs,
           "peak_rss_mb_after_inference": inference_rss, "train_step_s": train_step, "peak_rss_mb": peak_rss_mb()}
    if gpu:
        row["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return row


def merge_rows(rounds: list[dict]) -> dict:
    """One row from the processes of one setting: predict and network times the medians of all
    the rounds' timed runs, the training step the median of the rounds' medians, the largest
    peak memory."""
    row = merge_rounds(rounds, {"predict_s_end_to_end": "predict_s_end_to_end_runs", "network_s": "network_s_runs",
                                "train_step_s": None},
                       ("peak_rss_mb_after_inference", "peak_rss_mb", "peak_gpu_mb"))
    row["network_scans_per_s"] = 1 / row["network_s"]
    return row


def main() -> str:
    if not (KITTI / "sequences").is_dir():
        return "student: skipped (no ../shared/data)"
    gpu = _gpu()
    settings = [s for s in SETTINGS if not gpu or (s[2], s[3]) == ("auto", "default")]   # auto is bf16 there
    runs = {setting: [] for setting in settings}
    for _ in range(ROUNDS):   # the settings alternate, so a slow spell of the machine hits all
        for setting in settings:
            out = subprocess.run([sys.executable, __file__, *map(str, setting)], capture_output=True,
                                 text=True, check=True, cwd=str(RESULTS.parent))
            runs[setting].append(json.loads(out.stdout.strip().splitlines()[-1]))
    rows = [merge_rows(rounds) for rounds in runs.values()]
    write_result("student", {"scan": "SemanticKITTI 00/000000", "rounds": ROUNDS, "rows": rows})
    small05, small10 = (next(r for r in rows if r["backbone"] == "small" and r["voxel_size"] == voxel
                             and r["precision"] == "auto" and r["allocator"] == "default") for voxel in (0.05, 0.1))
    kept05 = next((r for r in rows if r["backbone"] == "small" and r["voxel_size"] == 0.05 and r["precision"] == "auto"
                   and r["allocator"] == "kept"), None)
    if small05["device"] == "cuda":
        return target_line("student inference on the GPU, 0.05 m, network only", small05["network_scans_per_s"],
                           50, "scans/s", lower_is_better=False)
    return "; ".join([
        target_line(f"predict 120k points, default student, 0.05 m ({small05['inference_dtype']})",
                    small05["predict_s_end_to_end"], 0.5, "s"),
        *([target_line("the same as `zeroseg3d predict` runs (freed memory kept)", kept05["predict_s_end_to_end"],
                       0.5, "s")] if kept05 else []),
        target_line("its peak memory", small05["peak_rss_mb_after_inference"], 2048, "MB"),
        target_line("training step, 0.1 m", small10["train_step_s"], 4.0, "s"),
        *(target_line(f"predict, 0.05 m, {r['precision']}", r["predict_s_end_to_end"], 0.5, "s") for r in rows
          if r["backbone"] == "small" and r["voxel_size"] == 0.05 and r["precision"] != "auto"),
    ])


def _gpu() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    if len(sys.argv) == 5:
        print(json.dumps(measure(sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4])))
    else:
        print(main())
