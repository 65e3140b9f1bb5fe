"""Where inference time goes, layer by layer, in float32 and in bf16 autocast: forward hooks time
every sparse convolution of the student (batch norms folded, as it predicts) on one scan,
the two precisions alternating in one process (``--repeat`` passes each after two warm-ups),
medians. The layers' voxels and voxels x C_in x C_out tell which side of
models/sparse_conv.BF16_MIN_WORK each falls on.

    python benchmarks/bench_layers.py [--voxel 0.05] [--scan runs/demo/world/sequences/19] [--backbone small]

Without ``--scan``, the real SemanticKITTI scan 00/000000. Adds an entry (scan, voxel size,
backbone, threshold) to benchmarks/results/layers.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from common import KITTI, RESULTS, random_student, write_result

PRECISIONS = ("fp32", "bf16")


def main() -> str:
    import torch
    from spconv.pytorch.conv import SparseConvolution

    from zeroseg3d.datasets import open_path
    from zeroseg3d.datasets.pipeline import SampleBuilder, collate
    from zeroseg3d.models.fold import fold_batch_norms
    from zeroseg3d.models import sparse_conv
    from zeroseg3d.utils.device import autocast

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voxel", type=float, default=0.05)
    parser.add_argument("--scan", default=None, help="a scan folder zeroseg3d reads (default: KITTI 00/000000)")
    parser.add_argument("--backbone", default="small")
    parser.add_argument("--repeat", type=int, default=8)
    parser.add_argument("--min-work", type=int, default=None,
                        help="replaces models/sparse_conv.BF16_MIN_WORK for this run (0: bfloat16 in every layer)")
    args = parser.parse_args()
    if args.min_work is not None:
        sparse_conv.BF16_MIN_WORK = args.min_work
    min_work = sparse_conv.BF16_MIN_WORK
    if args.scan is None and not (KITTI / "sequences").is_dir():
        return "layers: skipped (no ../shared/data)"
    source = args.scan or str(KITTI / "sequences" / "00")
    frame = open_path(source)[0]
    batch = collate([SampleBuilder(args.voxel, augment=None)(frame)])
    model, text = random_student(args.backbone)
    model = fold_batch_norms(model)

    times: dict[tuple[str, str], list[float]] = {}
    layers: dict[str, dict] = {}
    current = {"precision": None}

    def before(module, inputs):
        module.zeroseg3d_start = time.perf_counter()

    def after(module, inputs, output):
        name = module.zeroseg3d_name
        times.setdefault((name, current["precision"]), []).append(time.perf_counter() - module.zeroseg3d_start)
        voxels = len(inputs[0].features)
        layers[name] = {"kernel": module.kernel_size[0], "c_in": module.in_channels, "c_out": module.out_channels,
                        "voxels_in": voxels, "work": voxels * module.in_channels * module.out_channels}

    for name, module in model.named_modules():
        if isinstance(module, SparseConvolution):
            module.zeroseg3d_name = name
            module.register_forward_pre_hook(before)
            module.register_forward_hook(after)
    totals: dict[str, list[float]] = {p: [] for p in PRECISIONS}

    def run(precision: str) -> None:
        current["precision"] = precision
        start = time.perf_counter()
        with torch.no_grad(), autocast("cpu", precision):
            model(batch, text)["logits"].argmax(1)
        totals[precision].append(time.perf_counter() - start)

    for _ in range(2):
        for p in PRECISIONS:
            run(p)
    times.clear()
    totals = {p: [] for p in PRECISIONS}
    for i in range(args.repeat):
        for p in PRECISIONS if i % 2 else reversed(PRECISIONS):
            run(p)
    rows = []
    print(f"{'fp32 ms':>8} {'bf16 ms':>8} {'voxels':>7} {'work':>6}  layer")
    for name, layer in layers.items():
        ms = {p: 1000 * statistics.median(times[(name, p)]) for p in PRECISIONS}
        rows.append({"layer": name, **layer, **{f"{p}_ms": ms[p] for p in PRECISIONS}})
        print(f"{ms['fp32']:8.1f} {ms['bf16']:8.1f} {layer['voxels_in']:7d} {layer['work'] / 1e6:5.0f}M  "
              f"{name} {layer['c_in']}->{layer['c_out']} k{layer['kernel']}"
              + ("" if layer["work"] >= min_work else "  (float32 under bf16)"))
    network = {p: 1000 * statistics.median(totals[p]) for p in PRECISIONS}
    entry = {"scan": source if args.scan else "SemanticKITTI 00/000000", "voxel_size": args.voxel,
             "backbone": args.backbone, "voxels": len(batch["voxel_coords"]), "bf16_min_work": min_work,
             "network_ms": network, "layers": rows}
    path = RESULTS / "layers.json"
    entries = json.loads(path.read_text())["entries"] if path.is_file() else []
    key = (entry["scan"], entry["voxel_size"], entry["backbone"], min_work)
    entries = [e for e in entries
               if (e["scan"], e["voxel_size"], e["backbone"], e["bf16_min_work"]) != key] + [entry]
    write_result("layers", {"entries": entries})
    return (f"network {network['fp32']:.1f} ms fp32, {network['bf16']:.1f} ms bf16 "
            f"({network['fp32'] / network['bf16']:.2f}x), {entry['voxels']} voxels")


if __name__ == "__main__":
    print(main())
