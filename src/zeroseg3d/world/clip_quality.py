"""How good the demo teacher is on held-out scenes: crop zero-shot accuracy and dense
per-pixel accuracy / IoU against the world's 2D labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zeroseg3d.metrics import confusion_matrix, iou_per_class
from zeroseg3d.world.clip_training import (
    SKY,
    CropSampler,
    _crops,
    load_world_images,
    world_class_synonyms,
)
from zeroseg3d.world.scene import WORLD_CLASSES


def world_teacher_config(checkpoint: str | Path, **overrides):
    """The TeacherConfig that reads the demo teacher densely, as configs/world.yaml does:
    per-patch tokens in side-by-side windows of its 32-pixel input, at scales 0.5, 1 and 2."""
    from zeroseg3d.teacher.config import TeacherConfig

    checkpoint = Path(checkpoint)
    settings = dict(model_config=str(checkpoint.with_suffix(".json")), checkpoint=str(checkpoint),
                    readout="tokens", sliding=True, short_side=192, scales=[0.5, 1.0, 2.0],
                    window_stride=32, batch_size=8)
    settings.update(overrides)
    return TeacherConfig(**settings)


def evaluate_world_clip(checkpoint: str | Path, folders: list[Path], crops_per_class: int = 100, seed: int = 0,
                        max_images: int | None = 48, teacher=None) -> dict:
    """Crop accuracy and dense quality on the labelled images of ``folders``, read out with
    ``teacher`` (a TeacherConfig; default :func:`world_teacher_config`), the settings that
    produce the pseudo labels."""
    import torch

    from zeroseg3d.teacher.dense import DenseCLIP, cosine_logits
    from zeroseg3d.teacher.loading import load_clip
    from zeroseg3d.teacher.text import encode_classes, templates_for

    config = teacher if teacher is not None else world_teacher_config(checkpoint)
    loaded = load_clip(config)
    model = loaded.model
    names = WORLD_CLASSES + [SKY]
    text = encode_classes(model, loaded.tokenizer, world_class_synonyms(), templates_for(config.templates))
    scale = float(model.logit_scale.exp())
    images, labels, instances = load_world_images(folders, instances=True)
    if max_images and len(images) > max_images:
        pick = np.linspace(0, len(images) - 1, max_images).round().astype(int)
        images, labels, instances = images[pick], labels[pick], instances[pick]
    # crops: class-balanced, as in training, classified against the prompt ensembles
    rng = np.random.default_rng(seed)
    sampler = CropSampler(images, labels, rng, 10, 96, instances=instances)
    present = list(sampler.present)
    correct = np.zeros(len(names))
    total = np.zeros(len(names))
    images_t = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255).contiguous()
    labels_t = torch.from_numpy(labels)
    size = loaded.image_size
    with torch.no_grad():
        for c in present:
            sampler.present = [c]
            boxes, _ = sampler.sample(crops_per_class)
            pixels, _, _ = _crops(images_t, labels_t, boxes, size, size, len(names))
            embedding = torch.nn.functional.normalize(model.encode_image(loaded.normalize(pixels)), dim=-1)
            predicted = (embedding @ text.T).argmax(1).numpy()
            correct[c] += (predicted == c).sum()
            total[c] += len(predicted)
    # dense predictions over the whole images
    dense = DenseCLIP(loaded, config)
    matrix = np.zeros((len(names), len(names)), np.int64)
    for start in range(0, len(images), config.batch_size):
        batch = images[start:start + config.batch_size]
        grid = dense.features(batch)
        logits = cosine_logits(grid, text, scale)
        logits = torch.nn.functional.interpolate(logits, size=batch.shape[1:3], mode="bilinear", align_corners=False)
        predicted = logits.argmax(1).numpy()
        matrix += confusion_matrix(predicted.ravel(), labels[start:start + len(batch)].ravel(), len(names))
    iou = iou_per_class(matrix)
    with np.errstate(invalid="ignore"):
        crop_accuracy = correct / total
    return {
        "images": int(len(images)),
        "confusion": matrix.tolist(),   # rows: true class, columns: predicted (names + sky)
        "crop_accuracy": float(correct.sum() / total.sum()),
        "crop_accuracy_per_class": {n: (None if np.isnan(a) else float(a)) for n, a in zip(names, crop_accuracy)},
        "pixel_accuracy": float(np.trace(matrix) / matrix.sum()),
        "pixel_miou": float(np.nanmean(iou)),
        "pixel_iou_per_class": {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, iou)},
        "chance": 1.0 / len(names),
        "readout": config.output_settings(),   # the read-out these figures were measured with
    }
