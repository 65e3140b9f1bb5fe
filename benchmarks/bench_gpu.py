"""The MinkUNet34-class student's batched inference on a GPU: scans per second over batch
sizes, precisions and voxel sizes (target: >= 100 scans/s), with the sparse convolutions in
zeroseg3d's float16 and, for comparison, in spconv's own choice (float32 at inference, its
SIMT kernels); the logits' relative distance from float32; and a torch.profiler table of one
batch, the operators that take the GPU's time and the host's.

Inference is what zeroseg3d's Segmenter runs: batch norms folded (models/fold.py), the voxel
features, the head's cosine against 19 text embeddings, per-point logits and their argmax,
under autocast at the given precision. The batch is already on the device (the data path is
bench_peer.py's loader row).

    python benchmarks/bench_gpu.py [--batch 8 16 32] [--precision fp16 bf16] [--voxel 0.05 0.1]

Writes benchmarks/results/gpu_student.json and, with --profile-out DIR, the profiler tables.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import kitti_batch, timed_runs, write_result  # noqa: E402


# the sparse convolutions' dtype under autocast: zeroseg3d's (float16, models/sparse_conv.py)
# or spconv's own choice (the features' float32 at inference)
CONV_DTYPES = {"zeroseg3d": None, "spconv": lambda: None}


def infer_logits(model, batch, text, dtype):
    import torch

    device = batch["points"].device.type
    with torch.no_grad(), torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
        return model(batch, text)["logits"]


def main() -> None:
    import copy

    import numpy as np
    import torch
    import torch.nn.functional as F

    from zeroseg3d.models.config import ModelConfig
    from zeroseg3d.models.fold import fold_batch_norms
    from zeroseg3d.models.segmentor import create_student

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--precision", nargs="+", default=["fp16", "bf16"])
    parser.add_argument("--voxel", type=float, nargs="+", default=[0.05, 0.1])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--profile-out", type=Path, default=None, help="folder for the profiler tables")
    parser.add_argument("--device", default="cuda", help="cuda, or cpu to try the script out")
    parser.add_argument("--conv", nargs="+", default=["zeroseg3d", "spconv"], choices=sorted(CONV_DTYPES),
                        help="the sparse convolutions' dtype under autocast: zeroseg3d's float16 or spconv's own")
    args = parser.parse_args()
    device = args.device
    gpu = device.startswith("cuda")
    if gpu and not torch.cuda.is_available():
        print("gpu: skipped (no CUDA device)")
        return
    torch.manual_seed(0)
    model = fold_batch_norms(copy.deepcopy(create_student(ModelConfig(backbone="minkunet34"), 512))).to(device).eval()
    text = F.normalize(torch.randn(19, 512, device=device), dim=-1)
    dtypes = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}
    sync = torch.cuda.synchronize if gpu else (lambda: None)

    def infer(batch, dtype):
        return infer_logits(model, batch, text, dtype).argmax(1)

    def timed(batch, dtype) -> list[float]:
        # three warm-ups: spconv tunes its kernels per shape on first use
        return timed_runs(lambda: infer(batch, dtype), args.repeat, warmup=3, sync=sync)

    from zeroseg3d.models import sparse_conv

    own_dtype = sparse_conv.gpu_compute_dtype
    rows = []
    for voxel in args.voxel:
        for batch_size in args.batch:
            batch = kitti_batch(voxel, batch_size, device)
            sparse_conv.gpu_compute_dtype = own_dtype
            reference = infer_logits(model, batch, text, None).float()
            for precision in args.precision:
                for conv in args.conv:
                    sparse_conv.gpu_compute_dtype = CONV_DTYPES[conv] or own_dtype
                    row = {"voxel_size": voxel, "batch_size": batch_size, "precision": precision, "conv": conv,
                           "voxels": int(len(batch["voxel_coords"])), "points": int(len(batch["points"]))}
                    try:
                        if gpu:
                            torch.cuda.reset_peak_memory_stats()
                        logits = infer_logits(model, batch, text, dtypes[precision]).float()
                        row["logits_relative_error"] = float((logits - reference).norm() / reference.norm())
                        runs = timed(batch, dtypes[precision])
                        row.update(inference_s=float(np.median(runs)), runs_s=runs,
                                   scans_per_s=batch_size / float(np.median(runs)),
                                   peak_memory_mb=torch.cuda.max_memory_allocated() / 2**20 if gpu else None)
                        print(f"{voxel:.2f} m, {batch_size:2d} scans, {precision} (conv {conv}): "
                              f"{row['inference_s'] * 1000:.1f} ms, {row['scans_per_s']:.1f} scans/s, "
                              f"logits {row['logits_relative_error']:.1e} from fp32", flush=True)
                    except Exception as error:   # e.g. a precision spconv has no kernel for
                        row["error"] = f"{type(error).__name__}: {error}"
                        print(f"{voxel:.2f} m, {batch_size} scans, {precision} (conv {conv}): {row['error']}",
                              flush=True)
                    rows.append(row)
            del batch
    sparse_conv.gpu_compute_dtype = own_dtype
    profile = None
    if args.profile_out is not None:
        from torch.profiler import ProfilerActivity, profile as torch_profile

        args.profile_out.mkdir(parents=True, exist_ok=True)
        batch = kitti_batch(args.voxel[0], args.batch[0], device)
        dtype = dtypes[args.precision[0]]
        timed(batch, dtype)
        activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA] if gpu else [ProfilerActivity.CPU]
        with torch_profile(activities=activities) as prof:
            for _ in range(3):
                infer(batch, dtype)
            sync()
        averages = prof.key_averages()
        keys = ("cuda_time_total", "cpu_time_total") if gpu else ("cpu_time_total",)
        for key in keys:
            table = averages.table(sort_by=key, row_limit=30, max_name_column_width=60)
            (args.profile_out / f"gpu_profile_{key}.txt").write_text(table)
            print(table, flush=True)
        profile = {"voxel_size": args.voxel[0], "batch_size": args.batch[0], "precision": args.precision[0],
                   "tables": [f"gpu_profile_{k}.txt" for k in keys]}
    if not gpu:
        return   # a try-out: no result file
    print(write_result("gpu_student", {"scans": "SemanticKITTI 00 (cycled)", "rows": rows, "profile": profile}))


if __name__ == "__main__":
    main()
