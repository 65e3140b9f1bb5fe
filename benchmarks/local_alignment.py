"""How aligned are a student's point embeddings to the teacher's image patches? MCFA local's
own InfoNCE (each patch's pooled student embedding against the teacher's feature of that patch,
among the batch's other patches) and MCFA global's, computed without training on the demo's
training frames (no augmentation, the same batches for every checkpoint), for students trained
with and without those losses. If the students trained without local alignment score as well on
its loss as those trained with it, the other losses already taught what it would teach.
Checkpoints come as NAME=PATH; a name given several times (training seeds) is averaged.
Writes benchmarks/results/local_alignment.{json,md}.

    python benchmarks/local_alignment.py \\
        with_local=runs/demo/ablation/objects_among_seed{0,1}/checkpoints/last.pt \\
        without_local=runs/demo/sweep/no_local_seed{0,1}/checkpoints/last.pt
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, measure_named, write_result  # noqa: E402

from zeroseg3d.utils.atomic import atomic_write_text  # noqa: E402

# MCFA is computed for every checkpoint, whatever it trained with; the batches are the same
OVERRIDES = ["loss.mcfa_local=true", "loss.mcfa_global=true", "data.augment.enabled=false"]


def measure(path: str) -> dict:
    """Mean MCFA local and global InfoNCE of one checkpoint over the training frames."""
    import torch

    from zeroseg3d.config import load_config_text
    from zeroseg3d.datasets.pipeline import collate, finish_batch
    from zeroseg3d.engine.builder import build_setup, load_student
    from zeroseg3d.engine.checkpoint import load_checkpoint
    from zeroseg3d.losses.method import MethodCriterion

    state = load_checkpoint(path)
    config = load_config_text(state["config"], f"{path} (stored config)", OVERRIDES)
    setup = build_setup(config, progress=False)
    _, model = load_student(state, path, config)
    model.train()   # the MCFA embeddings are computed in training mode; batch norms keep their statistics
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    train_set = setup.train_set
    train_set.set_epoch(0)
    seen = torch.zeros(len(train_set.frames.vocabulary.names), dtype=torch.bool)
    seen[list(setup.split.seen)] = True
    criterion = MethodCriterion(config.loss, seen, ~seen, "guided", torch.Generator().manual_seed(0))
    local, global_ = [], []
    with torch.no_grad():
        for start in range(0, len(train_set), config.train.batch_size):
            batch = finish_batch(collate([train_set[i] for i in range(start, min(start + config.train.batch_size,
                                                                                 len(train_set)))]))
            out = model(batch, setup.text, criterion)
            if "loss_local" in out:
                local.append(float(out["loss_local"]))
                global_.append(float(out["loss_global"]))
    return {"checkpoint": path, "batches": len(local), "local": float(np.mean(local)), "global": float(np.mean(global_)),
            "chance_local": math.log(config.loss.local_max_patches)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", metavar="NAME=PATH")
    parser.add_argument("--out", type=Path, default=RESULTS / "local_alignment.json", help="result file (.json; .md beside)")
    args = parser.parse_args()
    started = time.time()
    rows = []
    for name, _, runs in measure_named(args.checkpoints, measure):
        row = {"name": name, "runs": runs, "chance_local": runs[0]["chance_local"]}
        for key in ("local", "global"):
            values = [r[key] for r in runs]
            row[key], row[f"{key}_range"] = float(np.mean(values)), [min(values), max(values)]
        rows.append(row)
        print(f"{name}: local InfoNCE {rows[-1]['local']:.3f} {rows[-1]['local_range']}, "
              f"global {rows[-1]['global']:.3f} {rows[-1]['global_range']}", flush=True)
    lines = ["# MCFA losses of trained students (demo training frames, no augmentation)", "",
             f"Chance level of the local InfoNCE: ln({round(math.exp(rows[0]['chance_local']))}) = "
             f"{rows[0]['chance_local']:.2f}. Mean over the checkpoints of a name [lowest, highest].", "",
             "| students | checkpoints | MCFA local InfoNCE | MCFA global InfoNCE |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {len(r['runs'])} | {r['local']:.3f} [{r['local_range'][0]:.3f}, "
                     f"{r['local_range'][1]:.3f}] | {r['global']:.3f} [{r['global_range'][0]:.3f}, "
                     f"{r['global_range'][1]:.3f}] |")
    path = write_result("local_alignment", {"rows": rows, "seconds": round(time.time() - started, 1)}, args.out)
    atomic_write_text(path.with_suffix(".md"), "\n".join(lines) + "\n")
    print(path)


if __name__ == "__main__":
    main()
