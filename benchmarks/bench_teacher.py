"""Dense teacher throughput on a KITTI-size image (1241x376), random weights."""

from __future__ import annotations

import numpy as np

from common import target_line, timed, write_result


def main() -> str:
    import torch

    from zeroseg3d.teacher.config import TeacherConfig
    from zeroseg3d.teacher.dense import DenseCLIP
    from zeroseg3d.teacher.loading import load_clip, resolve_device

    device = resolve_device("auto")
    image = np.random.default_rng(0).integers(0, 255, (1, 376, 1241, 3), dtype=np.uint8)
    results, lines = {}, []
    for model in ("ViT-B-16", "RN50"):
        config = TeacherConfig(model=model, random_init=True, readout="value", short_side=224)
        dense = DenseCLIP(load_clip(config, device), config, device)
        seconds = timed(lambda: dense.features(image), repeat=3)
        if device == "cuda":
            batch = np.repeat(image, 16, axis=0)
            config.precision = "bf16"
            seconds_batched = timed(lambda: (dense.features(batch), torch.cuda.synchronize()), repeat=3) / 16
            results[model] = {"s_per_frame": seconds, "fps_batch16_bf16": 1 / seconds_batched}
        else:
            results[model] = {"s_per_frame": seconds, "fps": 1 / seconds}
        lines.append(target_line(f"teacher {model} (224 short side, value read-out)", seconds, 1.0, "s/frame"))
    write_result("teacher", {"image": [1241, 376], "short_side": 224, "models": results})
    return "; ".join(lines)


if __name__ == "__main__":
    print(main())
