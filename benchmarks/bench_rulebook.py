"""Rulebook construction on the CPU: spconv's hash-table builder against models/rulebook.py,
on the real scan at every level of the student's UNet (3x3x3 submanifold rulebooks and the
kernel-2 stride-2 ones between levels), interleaved, medians; and the small student's
inference with its rulebooks from each and with its batch norms folded too (the same weights
and scan, alternated in one process; the rulebooks must give equal outputs).

    python benchmarks/bench_rulebook.py [--voxel 0.05 0.1] [--repeat 7]

Writes benchmarks/results/rulebook.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import KITTI, write_result  # noqa: E402


def _median_ms(fns: dict, repeat: int) -> dict:
    """Median milliseconds of each function, the functions alternated in every round."""
    times = {name: [] for name in fns}
    for fn in fns.values():
        fn()   # warm-up
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def levels(voxel: float, repeat: int) -> list[dict]:
    from spconv.core import ConvAlgo
    from spconv.pytorch import ops

    from zeroseg3d.datasets.pipeline import SampleBuilder, collate
    from zeroseg3d.datasets.semantickitti import SemanticKITTI
    from zeroseg3d.models.rulebook import downsample_pairs, submanifold_pairs
    from zeroseg3d.models.spconv_compat import import_spconv

    import_spconv()
    frame = SemanticKITTI.from_root(KITTI, sequences=["00"])[0]
    coords = collate([SampleBuilder(voxel, augment=None)(frame)])["voxel_coords"].int()
    shape = [int(s) + 2 for s in coords[:, 1:].max(dim=0).values]
    rows = []
    for level in range(5):
        def spconv_pairs(subm, coords=coords, shape=shape):
            kernel, stride = ([3] * 3, [1] * 3) if subm else ([2] * 3, [2] * 3)
            return ops.get_indice_pairs(coords, 1, shape, ConvAlgo.Native, kernel, stride, [0] * 3, [1] * 3,
                                        [0] * 3, subm, False)

        times = _median_ms({
            "submanifold_spconv_ms": lambda: spconv_pairs(True),
            "submanifold_zeroseg3d_ms": lambda c=coords, s=shape: submanifold_pairs(c, s),
            "downsample_spconv_ms": lambda: spconv_pairs(False),
            "downsample_zeroseg3d_ms": lambda c=coords, s=shape: downsample_pairs(c, s),
        }, repeat)
        rows.append({"voxel_size": voxel, "level": level, "voxels": len(coords), **times})
        coords, _, _, shape = downsample_pairs(coords, shape)
    return rows


def inference(voxel: float, repeat: int) -> dict:
    """The small student's inference (fp32 and bf16) three ways, alternated in one process:
    with spconv's rulebooks, with zeroseg3d's, and with zeroseg3d's and its batch norms folded
    (models/fold.py, as zeroseg3d's Segmenter predicts); the same weights (batch norms with
    statistics away from the identity) and scan."""
    import copy

    import torch
    import torch.nn.functional as F
    from torch import nn

    from zeroseg3d.datasets.pipeline import SampleBuilder, collate
    from zeroseg3d.datasets.semantickitti import SemanticKITTI
    from zeroseg3d.models import sparse_conv
    from zeroseg3d.models.config import ModelConfig
    from zeroseg3d.models.fold import fold_batch_norms
    from zeroseg3d.models.segmentor import create_student
    from zeroseg3d.utils.device import autocast

    frame = SemanticKITTI.from_root(KITTI, sequences=["00"])[0]
    batch = collate([SampleBuilder(voxel, augment=None)(frame)])
    torch.manual_seed(0)
    model = create_student(ModelConfig(backbone="small"), 512).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_var.uniform_(0.5, 2.0)
                m.running_mean.normal_(0.0, 0.5)
    folded = fold_batch_norms(copy.deepcopy(model))
    text = F.normalize(torch.randn(19, 512), dim=-1)
    threshold = sparse_conv.OWN_RULEBOOK_MIN_VOXELS
    variants = {"spconv_rulebooks": (model, False), "zeroseg3d_rulebooks": (model, True),
                "zeroseg3d_rulebooks_folded": (folded, True)}
    row = {"voxel_size": voxel, "voxels": len(batch["voxel_coords"])}
    try:
        for precision in ("fp32", "bf16"):
            outputs = {}

            def run(name):
                network, ours = variants[name]
                # no scan reaches an infinite threshold: spconv builds every rulebook
                sparse_conv.OWN_RULEBOOK_MIN_VOXELS = threshold if ours else float("inf")
                with torch.no_grad(), autocast("cpu", precision):
                    outputs[name] = network(batch, text)["logits"]

            times = _median_ms({name: (lambda n=name: run(n)) for name in variants}, repeat)
            for name in variants:
                row[f"{precision}_{name}_s"] = times[name] / 1000
            reference = outputs["spconv_rulebooks"]
            row[f"{precision}_rulebooks_equal_outputs"] = bool(torch.equal(reference, outputs["zeroseg3d_rulebooks"]))
            row[f"{precision}_folded_max_logit_change"] = float((outputs["zeroseg3d_rulebooks_folded"] - reference).abs().max())
            row[f"{precision}_folded_same_labels"] = float(
                (outputs["zeroseg3d_rulebooks_folded"].argmax(1) == reference.argmax(1)).float().mean())
    finally:
        sparse_conv.OWN_RULEBOOK_MIN_VOXELS = threshold
    return row


def main() -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voxel", type=float, nargs="+", default=[0.05, 0.1])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    if not (KITTI / "sequences").is_dir():
        return "rulebook: skipped (no ../shared/data)"
    rows = [row for voxel in args.voxel for row in levels(voxel, args.repeat)]
    students = [inference(voxel, args.repeat) for voxel in args.voxel]
    write_result("rulebook", {"scan": "SemanticKITTI 00/000000", "levels": rows, "small_student": students})
    lines = [f"rulebook {r['voxel_size']} m level {r['level']} ({r['voxels']} voxels): submanifold "
             f"{r['submanifold_spconv_ms']:.1f} -> {r['submanifold_zeroseg3d_ms']:.1f} ms, downsample "
             f"{r['downsample_spconv_ms']:.1f} -> {r['downsample_zeroseg3d_ms']:.1f} ms" for r in rows]
    lines += [f"small student {s['voxel_size']} m {p}: spconv's rulebooks {s[f'{p}_spconv_rulebooks_s']:.3f} s, "
              f"zeroseg3d's {s[f'{p}_zeroseg3d_rulebooks_s']:.3f} s (equal outputs: {s[f'{p}_rulebooks_equal_outputs']}), "
              f"and batch norms folded {s[f'{p}_zeroseg3d_rulebooks_folded_s']:.3f} s (same labels: "
              f"{100 * s[f'{p}_folded_same_labels']:.2f}%)" for s in students for p in ("fp32", "bf16")]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
