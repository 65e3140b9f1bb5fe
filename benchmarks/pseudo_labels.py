"""How good are the labels the student learns its unseen classes from?

On the frames of a finished `make demo` (training split by default), for each way of making
pseudo labels: per frame or consolidated over time, the teacher's argmax (`all`) or its most
probable unseen class (`among`; also after dividing each unseen class by its prior, the
teacher's mean probability of it on the unlabelled points, to the powers ``--prior-powers``),
per point or voted over objects of unlabelled points (each point's vote also weighted by the
teacher's probability mass on the unseen classes to the powers ``--vote-mass-powers``, each
also with the weights only taking labels away: ``loss.pseudo_vote_agree``). Counted
on the points whose 3D label is an unseen class (the points that are unlabelled in training):
coverage (the share that gets a pseudo label at the training threshold) and accuracy, and per
unseen class the precision of the labels and how many points get them. Writes
benchmarks/results/pseudo_labels.{json,md} (or --out's). Dotted overrides of the demo's config
(e.g. another teacher read-out with its own cache_dir) come before the options; the teacher's
cache for them must exist (`zeroseg3d teacher runs/demo/student/config.yaml OVERRIDES --split
train`).

    python benchmarks/pseudo_labels.py [KEY=VALUE ...] [--demo runs/demo] [--split train]
                                       [--prior-powers 0.25 0.5] [--vote-mass-powers 1 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, write_result  # noqa: E402


def main() -> None:
    from zeroseg3d.datasets import build_dataset
    from zeroseg3d.engine.demo import FULL, world_config
    from zeroseg3d.engine.builder import class_split, teacher_and_cache
    from zeroseg3d.teacher.cache import among_mass, class_prior, point_labels, prior_weights
    from zeroseg3d.teacher.objects import consolidate_objects
    from zeroseg3d.teacher.temporal import consolidate
    from zeroseg3d.utils.atomic import atomic_write_text

    parser = argparse.ArgumentParser()
    parser.add_argument("--demo", default="runs/demo")
    parser.add_argument("--split", default="train")
    parser.add_argument("--radius", type=float, default=0.5, help="object radius (m)")
    parser.add_argument("--prior-powers", type=float, nargs="*", default=[0.25, 0.5],
                        help="also the rule `among` with each unseen class divided by its prior to these powers")
    parser.add_argument("--vote-mass-powers", type=float, nargs="*", default=[],
                        help="also object votes weighted by the unseen classes' probability mass to these powers")
    parser.add_argument("--out", default=str(RESULTS / "pseudo_labels"), help="result files, without suffix")
    parser.add_argument("overrides", nargs="*", help="dotted overrides of the demo's config")
    args = parser.parse_args()
    started = time.time()
    config = world_config(Path(args.demo), FULL, 0, args.overrides)
    dataset = build_dataset(config.data, args.split)
    names = dataset.vocabulary.names
    split = class_split(config, dataset.vocabulary)
    unseen, seen = np.array(split.unseen), split.seen
    _, per_frame = teacher_and_cache(config, dataset.vocabulary)
    temporal = consolidate(dataset, per_frame, config.teacher.temporal, progress=False)
    threshold, min_mass = config.loss.pseudo_threshold, config.loss.pseudo_min_mass
    rows = []
    for source_name, cache in (("frame", per_frame), ("temporal", temporal)):
        prior = class_prior(dataset, cache, unseen, seen, min_mass)
        rules = [("all", None, 0.0), ("among", None, 0.0)] + [
            (f"among, prior^{power:g}", prior_weights(prior, power), power) for power in args.prior_powers]
        for rule, weights, power in rules:
            votes = [(0.0, 0.0, False), (args.radius, 0.0, False)] + [
                (args.radius, p, agree) for p in args.vote_mass_powers for agree in (False, True) if rule != "all"]
            for radius, vote_power, agree in votes:
                matrix = np.zeros((len(names), len(names)), np.int64)
                total = 0
                truth = np.zeros(len(names), np.int64)
                for i, frame_id in enumerate(dataset.frame_ids):
                    frame = dataset[i]
                    outputs = cache.load(frame_id, frame.num_points)
                    label, conf = point_labels(outputs, None if rule == "all" else unseen, min_mass, weights)
                    hidden = np.isin(frame.labels, unseen)
                    if radius > 0:
                        vote_weight = among_mass(outputs, unseen) ** vote_power if vote_power else None
                        label, conf = consolidate_objects(frame.xyz, hidden, label, conf, len(names), radius,
                                                          vote_weight=vote_weight, vote_agree=agree)
                    used = hidden & (label >= 0) & (conf >= threshold) & np.isin(label, unseen)
                    total += int(hidden.sum())
                    truth += np.bincount(frame.labels[hidden], minlength=len(names))
                    np.add.at(matrix, (frame.labels[used], label[used]), 1)
                labelled = matrix[:, unseen].sum(0)
                rows.append({
                    "labels": source_name, "rule": rule, "object_radius": radius, "prior_power": power,
                    "vote_mass_power": vote_power, "vote_agree": agree,
                    "prior": {names[u]: float(v) for u, v in zip(unseen, prior)},
                    "coverage": float(matrix.sum() / max(total, 1)),
                    "accuracy": float(np.trace(matrix) / max(matrix.sum(), 1)),
                    "precision": {names[u]: (float(matrix[u, u] / n) if n else None) for u, n in zip(unseen, labelled)},
                    "labelled_points": {names[u]: int(n) for u, n in zip(unseen, labelled)},
                    "unseen_points": total,
                    # what each unseen class's points are taught: their own class, another, nothing
                    "fate": {names[u]: {"points": int(truth[u]), "right": int(matrix[u, u]),
                                        "as": {names[k]: int(matrix[u, k]) for k in unseen if k != u and matrix[u, k]},
                                        "unlabelled": int(truth[u] - matrix[u].sum())} for u in unseen}})
                print(f"{source_name:8s} {rule:16s} objects {radius} vote mass^{vote_power:g}{' agree' if agree else ''}: "
                      f"coverage {rows[-1]['coverage']:.3f}, accuracy {rows[-1]['accuracy']:.3f}", flush=True)
    out = Path(args.out)
    write_result(out.stem, {"demo": str(args.demo), "split": args.split, "seconds": round(time.time() - started, 1),
                            "rows": rows}, out.with_suffix(".json"))
    unseen_names = [names[u] for u in unseen]
    lines = [f"# Pseudo labels on the unseen-class points of {args.demo}'s {args.split} frames "
             f"({len(dataset)} frames, {rows[0]['unseen_points']} points, threshold {threshold}; "
             f"{time.time() - started:.0f} s)", "",
             "| labels | rule | objects | vote mass power | agree | coverage | accuracy | "
             + " | ".join(f"{n}: precision (points)" for n in unseen_names) + " |",
             "|---|---|---|---|---|---|---|" + "---|" * len(unseen_names)]
    for row in rows:
        cells = [f"{row['precision'][n]:.2f} ({row['labelled_points'][n]})" if row["precision"][n] is not None
                 else "- (0)" for n in unseen_names]
        lines.append(f"| {row['labels']} | {row['rule']} | {row['object_radius'] or '-'} | "
                     f"{row['vote_mass_power'] if row['object_radius'] else '-'} | "
                     f"{row['vote_agree'] if row['object_radius'] else '-'} | {100 * row['coverage']:.1f}% | "
                     f"{100 * row['accuracy']:.1f}% | " + " | ".join(cells) + " |")
    for row in (r for r in rows if r["labels"] == "temporal" and r["rule"] == "among" and r["object_radius"]):
        lines += ["", f"What each unseen class's points are taught ({row['labels']} labels, rule {row['rule']}, "
                  f"objects {row['object_radius']}, vote mass power {row['vote_mass_power']:g}, "
                  f"agree {row['vote_agree']}):", "",
                  "| class | points | labelled right | labelled as another class | unlabelled |", "|---|---|---|---|---|"]
        for name, fate in row["fate"].items():
            other = ", ".join(f"{k} {v}" for k, v in sorted(fate["as"].items(), key=lambda kv: -kv[1])) or "-"
            lines.append(f"| {name} | {fate['points']} | {fate['right']} | {other} | {fate['unlabelled']} |")
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
