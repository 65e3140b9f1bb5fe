"""zeroseg3d's MinkUNet34-class student against the reference SpUNet-v1m1 (Pointcept's
SemanticKITTI configuration, benchmarks/reference_spunet.py), side by side in one run.

Both networks get the same voxelized scans and the same harness: inference is the network,
per-point logits and their argmax (the student: backbone, head into CLIP space, cosine against
19 text embeddings, its batch norms folded as zeroseg3d's Segmenter runs it; the reference:
backbone and classifier, as Pointcept runs it); a training step is that forward,
cross-entropy on every point, backward and an AdamW step. Each (network, voxel size) runs in its
own process, so its peak memory is its own; ``--rounds`` rounds alternate the (network, precision) processes
and the medians are over every timed run of every round (``--repeat`` per process, after a
warm-up). On the CPU one scan per step; on a GPU ``--batch`` scans, under autocast at
``--precision``, plus the data loader's rate against the training step's. On the CPU the peer
runs in float32 only (spconv's CPU kernels have no bfloat16), so zeroseg3d at ``bf16`` (its own
CPU products, models/sparse_conv.py) is compared with the peer in float32.

    python benchmarks/bench_peer.py [--voxel 0.05 0.1] [--repeat 3] [--rounds 2] [--precision fp32 bf16]

Writes benchmarks/results/peer.json (peer_gpu.json on a GPU).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import KITTI, merge_rounds, write_result  # noqa: E402

NETWORKS = ("zeroseg3d_minkunet34", "reference_spunet")


def build(network: str):
    """The network behind one interface: batch and text in, per-point logits out."""
    from torch import nn

    from zeroseg3d.models.config import ModelConfig
    from zeroseg3d.models.segmentor import create_student
    from zeroseg3d.utils.schedule import scatter_mean

    if network != "reference_spunet":
        return create_student(ModelConfig(backbone="minkunet34"), 512)
    from reference_spunet import ReferenceSpUNet

    class Reference(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = ReferenceSpUNet(4, 19)

        def forward(self, batch, text):
            coords = batch["voxel_coords"]
            features = scatter_mean(batch["points"], batch["point_to_voxel"], coords.shape[0])
            return {"logits": self.net(features, coords, len(batch["offsets"]) - 1)[batch["point_to_voxel"]]}

    return Reference()


def measure(network: str, voxel: float, repeat: int, batch_size: int, precision: str) -> dict:
    import copy

    import numpy as np
    import torch
    import torch.nn.functional as F

    from common import kitti_batch, peak_rss_mb, timed_runs
    from zeroseg3d.models.fold import fold_batch_norms
    from zeroseg3d.utils.optim import adamw

    gpu = torch.cuda.is_available()
    device = "cuda" if gpu else "cpu"
    batch = kitti_batch(voxel, batch_size, device)
    labels = batch["labels"].clamp(min=0)
    torch.manual_seed(0)
    model = build(network).to(device)
    text = F.normalize(torch.randn(19, 512, device=device), dim=-1)
    # each network with its codebase's optimizer: Pointcept builds torch's AdamW as it is
    # (a for-loop on the CPU), zeroseg3d's Trainer the fused one (utils/optim.adamw)
    optimizer = (torch.optim.AdamW(model.parameters(), 1e-3) if network == "reference_spunet"
                 else adamw(model.parameters(), 1e-3, 0.01))
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
    autocast = lambda: torch.autocast(device, dtype=dtype, enabled=dtype is not None)  # noqa: E731
    # on a GPU the sparse convolutions run in float16 under either autocast dtype (utils/device.grad_scaler)
    scaler = torch.amp.GradScaler(device, enabled=gpu and dtype is not None)
    sync = torch.cuda.synchronize if gpu else None

    # the student predicts as zeroseg3d's Segmenter runs it: batch norms folded (models/fold.py)
    runner = model if network == "reference_spunet" else fold_batch_norms(copy.deepcopy(model))

    def infer():
        with torch.no_grad(), autocast():
            runner(batch, text)["logits"].argmax(1)

    def step():
        with autocast():
            loss = F.cross_entropy(model(batch, text)["logits"].float(), labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    model.eval()
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    inference = timed_runs(infer, repeat, sync=sync)
    inference_memory = torch.cuda.max_memory_allocated() / 2**20 if gpu else peak_rss_mb()
    runner = None   # the copy goes before training
    model.train()
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    train = timed_runs(step, repeat, sync=sync)
    row = {"network": network, "voxel_size": voxel, "device": device, "precision": precision,
           "batch_size": batch_size, "points": int(len(batch["points"])), "voxels": int(len(batch["voxel_coords"])),
           "parameters": sum(p.numel() for p in model.parameters()),
           "inference_s": float(np.median(inference)), "train_step_s": float(np.median(train)),
           "inference_runs_s": inference, "train_runs_s": train,
           "peak_memory_mb_inference": inference_memory,
           "peak_memory_mb_train": torch.cuda.max_memory_allocated() / 2**20 if gpu else peak_rss_mb(),
           "memory_kind": "gpu allocated" if gpu else "process peak RSS"}
    row["scans_per_s_inference"] = batch_size / row["inference_s"]
    return row


def merge_rows(rounds: list[dict]) -> dict:
    """One row from the rounds of one (network, voxel size, precision): medians over every
    run of every round, the largest peak memory."""
    good = [r for r in rounds if "error" not in r]
    if not good:
        return rounds[0]
    row = merge_rounds(good, {"inference_s": "inference_runs_s", "train_step_s": "train_runs_s"},
                       ("peak_memory_mb_inference", "peak_memory_mb_train"))
    row["scans_per_s_inference"] = row["batch_size"] / row["inference_s"]
    row["rounds"] = len(good)
    return row


def loader_rate(voxel: float, batch_size: int, workers: int, device: str) -> float:
    """Training batches per second through the training loader (read, the teacher's cached
    outputs of ViT-B-16 at KITTI's native size, the pairing among them, collate, pinned for a
    GPU; the training step augments and voxelizes on its device)."""
    import tempfile

    from common import kitti_training_set, loader_batches_per_s

    with tempfile.TemporaryDirectory() as cache_dir:
        return loader_batches_per_s(kitti_training_set(voxel, cache_dir), batch_size, workers, device)


def finish_seconds(voxel: float, batch_size: int, device: str, repeat: int = 5) -> float:
    """Median seconds of the training step's own share of the data path on ``device``:
    augmenting and voxelizing a batch of ``batch_size`` training samples as the loader
    delivers them (datasets.pipeline.finish_batch), after the copy to the device."""
    import statistics
    import tempfile

    import torch

    from common import kitti_training_set
    from zeroseg3d.datasets.pipeline import collate_compact, finish_batch, widen
    from zeroseg3d.utils.device import to_device

    with tempfile.TemporaryDirectory() as cache_dir:
        samples = kitti_training_set(voxel, cache_dir)
        batch = collate_compact([samples[i % len(samples)] for i in range(batch_size)])
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    times = []
    for _ in range(repeat + 1):   # the first: warm-up
        moved = widen(to_device(batch, device))
        sync()
        start = time.perf_counter()
        finish_batch(moved)
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voxel", type=float, nargs="+", default=[0.05, 0.1])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per process, after a warm-up")
    parser.add_argument("--rounds", type=int, default=2, help="processes per network, alternating")
    parser.add_argument("--batch", type=int, default=None, help="scans per step (default: 1 CPU, 8 GPU)")
    parser.add_argument("--precision", nargs="+", default=None, help="fp32 | fp16 | bf16 (default: fp32 bf16 CPU; fp32 fp16 GPU)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 8, 16], help="loader workers tried on a GPU")
    parser.add_argument("--measure", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        network, voxel, repeat, batch, precision = args.measure
        print(json.dumps(measure(network, float(voxel), int(repeat), int(batch), precision)))
        return
    if not (KITTI / "sequences").is_dir():
        print("peer: skipped (no ../shared/data)")
        return
    gpu = torch.cuda.is_available()
    batch = args.batch or (8 if gpu else 1)
    precisions = args.precision or (["fp32", "fp16"] if gpu else ["fp32", "bf16"])
    if not gpu and "fp32" not in precisions:   # the peer's only CPU precision, the ratios' reference
        precisions = ["fp32", *precisions]
    rows = []
    for voxel in args.voxel:
        # every (network, precision) once per round, so that a slow spell of a shared machine hits all
        jobs = [(network, precision) for precision in precisions
                for network in (NETWORKS if gpu or precision == "fp32" else NETWORKS[:1])]
        runs: dict[tuple, list[dict]] = {job: [] for job in jobs}
        for _ in range(args.rounds):
            for network, precision in jobs:
                out = subprocess.run([sys.executable, __file__, "--measure", network, str(voxel), str(args.repeat),
                                      str(batch), precision], capture_output=True, text=True)
                if out.returncode != 0:
                    error = (out.stderr.strip().splitlines() or ["failed"])[-1]
                    runs[network, precision].append({"network": network, "voxel_size": voxel, "precision": precision,
                                                     "error": error})
                    print(f"{network} {voxel} {precision}: {error}", flush=True)
                    continue
                runs[network, precision].append(json.loads(out.stdout.strip().splitlines()[-1]))
        for job in jobs:
            rows.append(merge_rows(runs[job]))
            r = rows[-1]
            if "error" in r:
                continue
            print(f"{r['network']:22s} {voxel:.2f} m {r['precision']}: inference {r['inference_s']:.3f} s "
                  f"({r['scans_per_s_inference']:.1f} scans/s), train step {r['train_step_s']:.3f} s, "
                  f"peak {r['peak_memory_mb_train']:.0f} MB", flush=True)
    ratios = []
    for precision in precisions:
        for voxel in args.voxel:
            ours = next((r for r in rows if r["network"] == NETWORKS[0] and r["voxel_size"] == voxel
                         and r["precision"] == precision and "error" not in r), None)
            peer_precision = precision if gpu else "fp32"
            peer = next((r for r in rows if r["network"] == NETWORKS[1] and r["voxel_size"] == voxel
                         and r["precision"] == peer_precision and "error" not in r), None)
            if ours and peer:
                ratios.append({"voxel_size": voxel, "precision": precision, "peer_precision": peer_precision,
                               "inference_speedup": peer["inference_s"] / ours["inference_s"],
                               "train_step_speedup": peer["train_step_s"] / ours["train_step_s"],
                               "train_memory_ratio": ours["peak_memory_mb_train"] / peer["peak_memory_mb_train"]})
                print(f"{voxel:.2f} m {precision} (peer {peer_precision}): zeroseg3d is {ratios[-1]['inference_speedup']:.2f}x the peer's "
                      f"inference speed, {ratios[-1]['train_step_speedup']:.2f}x its training-step speed, "
                      f"{ratios[-1]['train_memory_ratio']:.2f}x its training memory", flush=True)
    result = {"scans": "SemanticKITTI 00 (cycled)", "batch_size": batch, "rows": rows, "ratios": ratios,
              "speedup_means": "peer time / zeroseg3d time (> 1: zeroseg3d faster)"}
    if gpu:
        ours = [r for r in rows if r["network"] == NETWORKS[0] and "error" not in r]
        fastest = min(ours, key=lambda r: r["train_step_s"]) if ours else None  # the hardest step to feed
        if fastest:
            # the step's rate with its own share of the data path (augment, voxelize)
            finish = finish_seconds(fastest["voxel_size"], batch, "cuda")
            step_rate = 1 / (fastest["train_step_s"] + finish)
            rates = {f"workers_{w}": loader_rate(fastest["voxel_size"], batch, w, "cuda") for w in args.workers}
            most = max(args.workers)   # pinning costs the main process a copy of every batch
            rates[f"workers_{most}_unpinned"] = loader_rate(fastest["voxel_size"], batch, most, "cpu")
            result["loader"] = {"voxel_size": fastest["voxel_size"], "batches_per_s": rates,
                                "finish_batch_s": finish, "train_steps_per_s": step_rate,
                                "loader_over_step_rate": max(rates.values()) / step_rate}
            print("loader", json.dumps(result["loader"]), flush=True)
    print(write_result("peer_gpu" if gpu else "peer", result))


if __name__ == "__main__":
    main()
