"""What self-training teaches: the student's own labels (``train.relabel``, at the end of the
CLIP-guided phase) on the training frames of the demo's world, against the hidden 3D labels of
the unseen classes, beside the teacher's pseudo labels on the same frames. Counts only what
the loss uses: pseudo labels where the 3D labels leave a point unlabelled, own labels where
neither gives one. Checkpoints come as NAME=PATH (a guided.pt); a name given several times is
the mean over its checkpoints. Writes benchmarks/results/self_labels.{json,md}.

    python benchmarks/self_labels.py default=runs/demo/ablation/objects_among_seed0/checkpoints/guided.pt
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, measure_named, write_result  # noqa: E402


def measure(path: str) -> dict:
    import torch

    from zeroseg3d.config import load_config_text
    from zeroseg3d.engine.builder import build_setup, load_student
    from zeroseg3d.engine.checkpoint import load_checkpoint
    from zeroseg3d.engine.train import relabel
    from zeroseg3d.losses.cross_entropy import pseudo_label_mask

    state = load_checkpoint(path)
    config = load_config_text(state["config"], f"{path} (stored config)")
    _, model = load_student(state, path, config)
    setup = build_setup(config, progress=False)
    dataset = setup.train_set
    own_labels = relabel(model, state["text_embeddings"], dataset, "cpu", config, progress=False)
    unseen = np.zeros(dataset.frames.vocabulary.num_classes, bool)
    unseen[list(dataset.split.unseen)] = True
    n = {"unseen_points": 0, "pseudo": 0, "pseudo_right": 0, "own": 0, "own_right": 0, "own_on_unseen": 0}
    for index in range(len(dataset)):
        sample = dataset[index]
        truth = dataset.frames[index].labels
        hidden = torch.from_numpy(sample.labels)
        pseudo = pseudo_label_mask(hidden, torch.from_numpy(sample.point_extras["teacher_label"]).long(),
                                   torch.from_numpy(sample.point_extras["teacher_conf"]), torch.from_numpy(unseen),
                                   config.loss.pseudo_threshold).numpy()
        own = own_labels[sample.frame_id]
        own_used = (own >= 0) & ~pseudo & (sample.labels < 0)
        n["unseen_points"] += int(unseen[np.maximum(truth, 0)][truth >= 0].sum())
        n["pseudo"] += int(pseudo.sum())
        n["pseudo_right"] += int((sample.point_extras["teacher_label"][pseudo] == truth[pseudo]).sum())
        n["own"] += int(own_used.sum())
        n["own_right"] += int((own[own_used] == truth[own_used]).sum())
        n["own_on_unseen"] += int(((truth >= 0) & unseen[np.maximum(truth, 0)] & own_used).sum())
    return {"unseen_points": n["unseen_points"],
            "pseudo_coverage": 100.0 * n["pseudo"] / max(1, n["unseen_points"]),
            "pseudo_accuracy": 100.0 * n["pseudo_right"] / max(1, n["pseudo"]),
            "own_points": n["own"], "own_coverage": 100.0 * n["own_on_unseen"] / max(1, n["unseen_points"]),
            "own_accuracy": 100.0 * n["own_right"] / max(1, n["own"])}


def main() -> None:
    from zeroseg3d.metrics import json_safe
    from zeroseg3d.utils.atomic import atomic_write_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", metavar="NAME=PATH")
    parser.add_argument("--out", default=str(RESULTS / "self_labels"), help="result files, without suffix")
    args = parser.parse_args()
    started = time.time()
    rows = []
    for name, paths, runs in measure_named(args.checkpoints, measure):
        rows.append({"name": name, "checkpoints": paths, **{k: float(np.mean([r[k] for r in runs])) for k in runs[0]}})
        print({k: round(v, 1) if isinstance(v, float) else v for k, v in rows[-1].items() if k != "checkpoints"},
              flush=True)
    out = Path(args.out)
    write_result(out.stem, {"seconds": round(time.time() - started, 1), "rows": json_safe(rows)},
                 out.with_suffix(".json"))
    lines = ["# The student's own labels against the teacher's (training frames, points of unseen classes)", "",
             "Coverage: share of the unseen classes' points labelled; accuracy: share of the labels right. Own labels "
             "count only where neither a 3D nor a pseudo label is. Mean over each row's checkpoints.", "",
             "| row | unseen points | pseudo: coverage | accuracy | own: points | coverage | accuracy |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['unseen_points']:.0f} | {r['pseudo_coverage']:.1f} | "
                     f"{r['pseudo_accuracy']:.1f} | {r['own_points']:.0f} | {r['own_coverage']:.1f} | "
                     f"{r['own_accuracy']:.1f} |")
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
