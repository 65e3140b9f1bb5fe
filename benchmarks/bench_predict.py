"""What a user waits for: `zeroseg3d predict` over a folder and `zeroseg3d evaluate` at the
command line against the in-process Segmenter, with the demo's student on the demo's world.

- in process: ``Segmenter.from_checkpoint`` once, then per scan reading it and predicting
  (the median over the scans);
- `zeroseg3d predict` on one scan and on every scan of ``--streets`` validation streets, each
  a fresh process: the amortised cost per scan is (time for K scans - time for one) / (K - 1),
  writing the PLY files included; the rest is the start (imports, checkpoint, text);
- evaluation: ``evaluate()`` in process over the 60 validation frames (per frame), and
  `zeroseg3d evaluate` as a command (its charts included).

    python benchmarks/bench_predict.py [--demo runs/demo] [--streets 8] [--rounds 3]

Writes benchmarks/results/predict.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import REPO, write_result  # noqa: E402


def command_seconds(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "zeroseg3d", *args], check=True, capture_output=True, cwd=REPO)
    return time.perf_counter() - start


def main() -> None:
    import torch

    from zeroseg3d.datasets import open_path
    from zeroseg3d.engine.builder import eval_set
    from zeroseg3d.engine.evaluate import evaluate
    from zeroseg3d.engine.predict import Segmenter

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", default="runs/demo")
    parser.add_argument("--streets", type=int, default=8, help="validation streets predicted at the command line")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    demo = Path(args.demo).resolve()
    checkpoint = demo / "student" / "checkpoints" / "self.pt"
    if not checkpoint.is_file():
        print(f"predict: skipped ({checkpoint} missing: run `make demo` first)")
        return
    segmenter = Segmenter.from_checkpoint(checkpoint, "cpu")
    config = segmenter.config
    validation = eval_set(config, "val")
    streets = sorted({s for s in validation.frames.frame_sequences})[:args.streets]
    folders = [Path(config.data.root) / "sequences" / s for s in streets]
    scans = sorted(p for folder in folders for p in (folder / "velodyne").glob("*.bin"))

    def in_process_round() -> tuple[float, list[int]]:
        per_scan, points = [], []
        for folder in folders:
            dataset = open_path(folder)
            for index in range(len(dataset)):
                start = time.perf_counter()
                frame = dataset[index]
                segmenter.predict(frame)
                per_scan.append(time.perf_counter() - start)
                points.append(frame.num_points)
        return float(np.median(per_scan[1:])), points   # the first one warms up

    # every measure once per round, the rounds alternating them, so that a slow spell of the
    # machine hits all; the medians over the rounds are reported, each round kept
    rounds: dict[str, list[float]] = {"in_process": [], "one": [], "many": [], "evaluate": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            in_process, points = in_process_round()
            rounds["in_process"].append(in_process)
            rounds["one"].append(command_seconds(["predict", str(checkpoint), str(scans[0]), "--out", f"{tmp}/one",
                                                  "--device", "cpu"]))
            rounds["many"].append(command_seconds(["predict", str(checkpoint), *map(str, folders), "--out",
                                                   f"{tmp}/many", "--device", "cpu"]))
            start = time.perf_counter()
            metrics = evaluate(segmenter.network, segmenter.text_embeddings, validation, validation.split, "cpu",
                               progress=False)
            rounds["evaluate"].append((time.perf_counter() - start) / len(validation))
        evaluate_command = command_seconds(["evaluate", str(checkpoint), "--out", f"{tmp}/eval", "--device", "cpu"])
    in_process, one, many, evaluate_per_frame = (float(np.median(rounds[k]))
                                                 for k in ("in_process", "one", "many", "evaluate"))
    amortised = (many - one) / (len(scans) - 1)
    result = {
        "checkpoint": str(checkpoint.relative_to(REPO)) if checkpoint.is_relative_to(REPO) else checkpoint.name,
        "voxel_size": config.data.voxel_size, "backbone": config.model.backbone, "threads": torch.get_num_threads(),
        "scans": len(scans), "points_per_scan": int(np.mean(points)),
        "in_process_predict_s_per_scan": in_process,
        "command_predict_one_scan_s": one, "command_predict_many_s": many,
        "command_predict_amortised_s_per_scan": amortised,
        "command_start_s": one - amortised,
        "amortised_over_in_process": amortised / in_process,
        "evaluate_s_per_frame": evaluate_per_frame, "evaluate_frames": len(validation),
        "evaluate_over_predict": evaluate_per_frame / in_process,
        "command_evaluate_s": evaluate_command, "evaluate_miou": metrics["miou"],
        "rounds": rounds,
    }
    print(f"predict in process {in_process:.3f} s/scan; `zeroseg3d predict` {one:.1f} s for one scan, {many:.1f} s "
          f"for {len(scans)}: {amortised:.3f} s/scan amortised ({result['amortised_over_in_process']:.2f}x); "
          f"evaluate {evaluate_per_frame:.3f} s/frame ({result['evaluate_over_predict']:.2f}x predict); "
          f"`zeroseg3d evaluate` {evaluate_command:.1f} s for {len(validation)} frames", flush=True)
    print(write_result("predict", result))


if __name__ == "__main__":
    main()
