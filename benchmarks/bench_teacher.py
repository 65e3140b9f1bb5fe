"""Dense teacher throughput on a KITTI-size image (1241x376), random weights: at a 224-pixel
short side on any device, and on a GPU also at native resolution (short side 376), batched, in
bf16 (teacher_gpu.json)."""

from __future__ import annotations

import numpy as np

from common import target_line, timed, write_result


def main() -> str:
    import torch

    from zeroseg3d.teacher.config import TeacherConfig
    from zeroseg3d.teacher.dense import DenseCLIP
    from zeroseg3d.teacher.loading import load_clip
    from zeroseg3d.utils.device import resolve_device

    device = resolve_device("auto")
    image = np.random.default_rng(0).integers(0, 255, (1, 376, 1241, 3), dtype=np.uint8)
    results, lines = {}, []
    for model in ("ViT-B-16", "RN50"):
        config = TeacherConfig(model=model, random_init=True, readout="value", short_side=224)
        dense = DenseCLIP(load_clip(config, device), config, device)
        seconds = timed(lambda: dense.features(image), repeat=3)
        if device == "cuda":
            batch = np.repeat(image, 32, axis=0)
            config.precision = "bf16"
            seconds_batched = timed(lambda: (dense.features(batch), torch.cuda.synchronize()), repeat=3) / 32
            config.short_side = 376
            native = timed(lambda: (dense.features(batch), torch.cuda.synchronize()), repeat=3) / 32
            results[model] = {"s_per_frame": seconds, "fps_batch32_bf16": 1 / seconds_batched,
                              "native_grid": list(dense.resized_shape(376, 1241)),
                              "fps_native_batch32_bf16": 1 / native}
            lines.append(target_line(f"teacher {model} native 1241x376, bf16, batch 32", 1 / native, 500,
                                     "frames/s", lower_is_better=False))
            config.short_side = 224
        else:
            results[model] = {"s_per_frame": seconds, "fps": 1 / seconds}
        lines.append(target_line(f"teacher {model} (224 short side, value read-out)", seconds, 1.0, "s/frame"))
    write_result("teacher_gpu" if device == "cuda" else "teacher", {"image": [1241, 376], "short_side": 224, "models": results})
    return "; ".join(lines)


if __name__ == "__main__":
    print(main())
