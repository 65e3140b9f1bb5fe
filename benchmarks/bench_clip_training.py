"""A training step of the demo teacher's towers in float32 and in bfloat16 autocast (CPU).

The demo's model (world/clip_training.MODEL_CONFIG), a batch of 128 random 32-pixel crops and
the 17 class captions: text and image forward, the contrastive and dense-style losses in
float32, backward, AdamW. The two precisions alternate (twice each) to spread the machine's
drift over both; medians of the seconds per step. Writes benchmarks/results/clip_training.json.

    python benchmarks/bench_clip_training.py [--steps 15]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402


def main() -> None:
    import numpy as np
    import open_clip
    import torch
    import torch.nn.functional as F

    from zeroseg3d.world.clip_training import MODEL_CONFIG
    from zeroseg3d.world.config import ClipTrainConfig

    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "zs3d-bench-clip.json"
        path.write_text(json.dumps(MODEL_CONFIG))
        open_clip.add_model_config(path)
        model = open_clip.create_model(path.stem)
        tokenizer = open_clip.get_tokenizer(path.stem)
    model.visual.output_tokens = True
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    pixels = torch.randn(128, 3, 32, 32)
    captions = tokenizer([f"a photo of class {i}" for i in range(17)])
    target = torch.randint(0, 17, (128,))

    def step(bf16: bool) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            text = model.encode_text(captions)
            pooled, tokens = model.visual(pixels)
            tokens = tokens @ model.visual.proj
        text = F.normalize(text.float(), dim=-1)
        logits = 10 * F.normalize(pooled.float(), dim=-1) @ text.T
        patches = 10 * F.normalize(tokens.float(), dim=-1) @ text.T
        loss = F.cross_entropy(logits, target) + F.cross_entropy(patches.reshape(-1, 17), target.repeat_interleave(64))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for name in ("fp32", "bf16", "fp32", "bf16"):
        for _ in range(3):
            step(name == "bf16")
        for _ in range(args.steps):
            start = time.perf_counter()
            step(name == "bf16")
            times[name].append(time.perf_counter() - start)
    result = {"median_seconds": {k: float(np.median(v)) for k, v in times.items()},
              "steps_each": 2 * args.steps, "batch": 128, "threads": args.threads,
              "auto_precision_here": "bf16" if ClipTrainConfig().use_bf16() else "fp32"}
    result["bf16_speedup"] = result["median_seconds"]["fp32"] / result["median_seconds"]["bf16"]
    print({k: round(v, 3) for k, v in result["median_seconds"].items()}, "speed-up", round(result["bf16_speedup"], 2))
    write_result("clip_training", result)


if __name__ == "__main__":
    main()
