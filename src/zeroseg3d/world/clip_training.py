"""The demo teacher: a small CLIP-architecture model trained from scratch on the world's images.

It sees every class in 2D, the 3D-unseen ones included, exactly as CLIP has seen everything on
the web while the 3D network has labels for some classes only. Training is contrastive between
crops of rendered images and captions built from class synonyms and prompt templates, plus an
auxiliary loss aligning each patch token with the text of its class (a dense vision-language
objective: the world has 2D labels for every class). The result is an ordinary open_clip
checkpoint (safetensors) with its model config (JSON), loaded like any other CLIP.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from zeroseg3d.datasets.vocabulary import Vocabulary
from zeroseg3d.errors import DataError
from zeroseg3d.teacher.loading import image_statistics, normalize_pixels
from zeroseg3d.utils.optim import adamw
from zeroseg3d.utils.schedule import warmup_cosine
from zeroseg3d.world.config import ClipTrainConfig
from zeroseg3d.world.scene import WORLD_CLASSES

# The sky has no 3D points but fills a third of every image: the teacher must know it to not
# call it building.
SKY = "sky"
TRAIN_TEMPLATES = [
    "a photo of a {}.", "a photo of the {}.", "a {} on a street.", "a street photo of a {}.",
    "a cropped photo of a {}.", "a close-up photo of a {}.", "a blurry photo of a {}.",
    "a photo of a small {}.", "a photo of a large {}.", "part of a {}.", "a {} in a city.",
    "there is a {} in the picture.",
]
# Thin or small classes rarely fill a crop: they need a lower purity to be sampled at all.
MIN_PURITY = {"pole": 0.2, "traffic-sign": 0.35, "trunk": 0.3, "bicycle": 0.2, "bicyclist": 0.3,
              "person": 0.3, "motorcycle": 0.3, "fence": 0.4}

MODEL_CONFIG = {
    "embed_dim": 128,
    "vision_cfg": {"image_size": 32, "patch_size": 4, "width": 128, "layers": 4, "head_width": 32,
                   "pool_type": "avg"},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 128, "heads": 4, "layers": 3},
}


def world_class_synonyms() -> list[tuple[str, ...]]:
    vocab = Vocabulary.load("semantickitti")
    synonyms = [vocab.synonyms(vocab.index(name)) for name in WORLD_CLASSES]
    return synonyms + [("sky", "clear sky", "cloudy sky")]


def image_folders(world: str | Path, sequences: list[str] | None = None) -> list[Path]:
    """The labelled image folders of a world: its sequences (all, or those named)."""
    root = Path(world) / "sequences"
    if not root.is_dir():
        raise DataError(world, "not a world (no sequences/ folder); run `zeroseg3d world generate`")
    return [root / s for s in sequences] if sequences else sorted(p for p in root.iterdir() if p.is_dir())


def load_world_images(folders: list[Path], instances: bool = False):
    """Images of folders holding image_2/ and image_2_labels/ (and image_2_instances/):
    (N, H, W, 3) uint8 images, (N, H, W) int64 class maps over WORLD_CLASSES + sky, and
    (N, H, W) instance ids when ``instances``."""
    from PIL import Image

    vocab = Vocabulary.load("semantickitti").restrict(WORLD_CLASSES)
    images, labels, instance_maps = [], [], []
    for folder in folders:
        label_dir = Path(folder) / "image_2_labels"
        if not label_dir.is_dir():
            raise DataError(folder, "no image_2_labels/: not a synthetic-world image folder")
        for label_path in sorted(label_dir.glob("*.png")):
            images.append(np.asarray(Image.open(Path(folder) / "image_2" / label_path.name).convert("RGB")))
            raw = np.asarray(Image.open(label_path)).astype(np.int64)
            mapped = vocab.map_raw(np.where(raw == 0, vocab.ignored_raw_ids[0], raw), label_path)
            labels.append(np.where(raw == 0, len(WORLD_CLASSES), mapped))
            if instances:
                instance_maps.append(np.asarray(Image.open(Path(folder) / "image_2_instances" / label_path.name)))
    if not images:
        raise DataError(folders[0] if folders else None, "no labelled images found")
    if instances:
        return np.stack(images), np.stack(labels), np.stack(instance_maps).astype(np.int64)
    return np.stack(images), np.stack(labels)


THINGS = ("car", "bicycle", "motorcycle", "truck", "person", "bicyclist")


def instance_boxes(labels: np.ndarray, instances: np.ndarray | None, min_pixels: int = 30) -> list[np.ndarray]:
    """Per class, rows (image, x0, y0, x1, y1) of the 2D boxes of its object instances."""
    from scipy.ndimage import find_objects

    boxes: list[list] = [[] for _ in range(len(WORLD_CLASSES) + 1)]
    if instances is None:
        return [np.zeros((0, 5), np.int64) for _ in boxes]
    for n in range(len(instances)):
        for instance, found in enumerate(find_objects(instances[n]), start=1):
            if found is None:
                continue
            mask = instances[n][found] == instance
            if mask.sum() < min_pixels:
                continue
            cls = np.bincount(labels[n][found][mask]).argmax()
            boxes[cls].append((n, found[1].start, found[0].start, found[1].stop, found[0].stop))
    return [np.array(b, np.int64).reshape(-1, 5) for b in boxes]


class CropSampler:
    """Class-balanced crops: for object classes mostly the whole object (its 2D box with a
    random margin), otherwise centred on a pixel of the class, with a purity threshold."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                 min_crop: int, max_crop: int, per_class: int = 40000, instances: np.ndarray | None = None,
                 object_fraction: float = 0.6):
        self.images, self.labels, self.rng = images, labels, rng
        self.min_crop, self.max_crop = min_crop, max_crop
        self.num_classes = len(WORLD_CLASSES) + 1
        self.object_fraction = object_fraction
        names = WORLD_CLASSES + [SKY]
        self.purity = np.array([MIN_PURITY.get(n, 0.6) for n in names])
        self.pixels = []
        for c in range(self.num_classes):
            found = np.argwhere(labels == c)
            if len(found) > per_class:
                found = found[rng.choice(len(found), per_class, replace=False)]
            self.pixels.append(found)
        self.objects = instance_boxes(labels, instances)
        self.present = [c for c in range(self.num_classes) if len(self.pixels[c])]
        self.class_probs: np.ndarray | None = None   # over self.present; None: uniform

    def focus(self, error: np.ndarray, share: float) -> None:
        """Sample classes partly in proportion to ``error`` (per class, e.g. a running crop
        error rate): ``share`` of the crops go to the hard classes, the rest stay uniform."""
        present_error = np.maximum(error[self.present], 1e-6)
        uniform = np.full(len(self.present), 1.0 / len(self.present))
        self.class_probs = (1 - share) * uniform + share * present_error / present_error.sum()

    def _object_crop(self, c: int):
        n, x0, y0, x1, y1 = self.objects[c][self.rng.integers(len(self.objects[c]))]
        height, width = self.labels.shape[1:]
        side = max(x1 - x0, y1 - y0) * self.rng.uniform(1.05, 1.5)
        side = float(np.clip(side, self.min_crop, 2 * self.max_crop))
        cx = (x0 + x1) / 2 + self.rng.uniform(-0.1, 0.1) * side
        cy = (y0 + y1) / 2 + self.rng.uniform(-0.1, 0.1) * side
        return (n, max(0.0, cx - side / 2), max(0.0, cy - side / 2),
                min(float(width), cx + side / 2), min(float(height), cy + side / 2))

    def sample(self, count: int):
        """boxes (count, 5) as (image, x0, y0, x1, y1) and the class of each crop."""
        height, width = self.labels.shape[1:]
        boxes, classes = [], []
        while len(boxes) < count:
            c = self.present[self.rng.choice(len(self.present), p=self.class_probs)]
            if len(self.objects[c]) and self.rng.random() < self.object_fraction:
                boxes.append(self._object_crop(c))
                classes.append(c)
                continue
            n, y, x = self.pixels[c][self.rng.integers(len(self.pixels[c]))]
            size = float(np.exp(self.rng.uniform(np.log(self.min_crop), np.log(self.max_crop))))
            for _ in range(4):  # shrink until the crop is pure enough
                half = size / 2
                cx = x + self.rng.uniform(-0.15, 0.15) * size
                cy = y + self.rng.uniform(-0.15, 0.15) * size
                x0, x1 = int(max(0, cx - half)), int(min(width, cx + half))
                y0, y1 = int(max(0, cy - half)), int(min(height, cy + half))
                if x1 - x0 >= 4 and y1 - y0 >= 4:
                    purity = (self.labels[n, y0:y1, x0:x1] == c).mean()
                    if purity >= self.purity[c]:
                        boxes.append((n, x0, y0, x1, y1))
                        classes.append(c)
                        break
                size = max(self.min_crop * 0.6, size / 2)
        return np.array(boxes, dtype=np.float32), np.array(classes)


def _crops(images_t, labels_t, boxes, size: int, patch: int, num_classes: int):
    """Crops resized to size x size (bilinear), and per patch the fraction of its most
    frequent class and that class, from the label map sampled at the crop's pixel centres."""
    import torch
    import torch.nn.functional as F
    from torchvision.ops import roi_align

    rois = torch.from_numpy(boxes)
    pixels = roi_align(images_t, rois, output_size=size, spatial_scale=1.0, sampling_ratio=2, aligned=True)
    steps = (torch.arange(size) + 0.5) / size                          # centres in [0, 1]
    xs = rois[:, 1:2] + steps[None] * (rois[:, 3:4] - rois[:, 1:2])   # (B, size)
    ys = rois[:, 2:3] + steps[None] * (rois[:, 4:5] - rois[:, 2:3])
    height, width = labels_t.shape[1:]
    cols = xs.long().clamp(0, width - 1)
    rows = ys.long().clamp(0, height - 1)
    image = rois[:, 0].long()
    sampled = labels_t[image[:, None, None], rows[:, :, None], cols[:, None, :]]   # (B, size, size)
    grid = size // patch
    cells = F.one_hot(sampled, num_classes).float()
    cells = cells.reshape(len(boxes), grid, patch, grid, patch, num_classes).mean(dim=(2, 4))
    fraction, cls = cells.reshape(len(boxes), grid * grid, num_classes).max(dim=-1)
    return pixels, fraction, cls


def train_world_clip(folders: list[Path], out: str | Path, config: ClipTrainConfig, progress: bool = True) -> dict:
    """Train the demo teacher; writes OUT (safetensors), OUT's .json model config, and
    OUT's .train.json (settings, losses, time). Returns that record."""
    import open_clip
    import torch
    import torch.nn.functional as F
    from safetensors.torch import save
    from tqdm import tqdm

    from zeroseg3d.utils.atomic import atomic_write_bytes, atomic_write_text

    out = Path(out)
    if out.suffix != ".safetensors":
        raise DataError(out, "the teacher checkpoint must be a .safetensors file")
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    images, labels, instances = load_world_images(folders, instances=True)
    sampler = CropSampler(images, labels, rng, config.min_crop, config.max_crop, instances=instances)
    model_config_path = out.with_suffix(".json")
    atomic_write_text(model_config_path, json.dumps(MODEL_CONFIG, indent=2))
    open_clip.add_model_config(model_config_path)
    name = model_config_path.stem
    model = open_clip.create_model(name)
    tokenizer = open_clip.get_tokenizer(name)
    visual = model.visual
    visual.output_tokens = True
    size, patch = MODEL_CONFIG["vision_cfg"]["image_size"], MODEL_CONFIG["vision_cfg"]["patch_size"]
    grid = size // patch
    mean, std = image_statistics(visual)
    images_t = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255).contiguous()
    labels_t = torch.from_numpy(labels)
    synonyms = world_class_synonyms()
    optimizer = adamw(model.parameters(), config.lr, config.weight_decay)

    bf16 = config.use_bf16()
    history = []
    crop_error = np.full(sampler.num_classes, 0.5)   # running per-class crop error (EMA)
    start = time.time()
    model.train()
    for step in tqdm(range(config.steps), desc="teacher training", unit="step", disable=not progress):
        for group in optimizer.param_groups:
            group["lr"] = config.lr * warmup_cosine(step, config.steps, config.warmup)
        boxes, classes = sampler.sample(config.batch_size)
        pixels, purity, patch_class = _crops(images_t, labels_t, boxes, size, patch, sampler.num_classes)
        flip = torch.from_numpy(rng.random(len(boxes)) < 0.5)
        pixels[flip] = pixels[flip].flip(-1)
        flipped = lambda t: t.reshape(-1, grid, grid).flip(-1).reshape(-1, grid * grid)  # noqa: E731
        purity[flip], patch_class[flip] = flipped(purity[flip]), flipped(patch_class[flip])
        gain = torch.from_numpy(rng.uniform(0.8, 1.2, (len(boxes), 1, 1, 1))).float()
        pixels = normalize_pixels((pixels * gain).clamp(0, 1), mean, std)
        captions = [synonyms[c][rng.integers(len(synonyms[c]))] for c in range(len(synonyms))]
        captions = [TRAIN_TEMPLATES[rng.integers(len(TRAIN_TEMPLATES))].format(s) for s in captions]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            text = model.encode_text(tokenizer(captions))
            pooled, tokens = visual(pixels)
            tokens = tokens @ visual.proj
        text, pooled, tokens = F.normalize(text.float(), dim=-1), pooled.float(), tokens.float()
        image = F.normalize(pooled, dim=-1)
        scale = model.logit_scale.exp().clamp(max=100)
        logits = scale * image @ text.T                               # (B, C)
        target = torch.from_numpy(classes)
        loss_i2t = F.cross_entropy(logits, target)
        # text -> image: every crop of the class is a positive
        positives = F.one_hot(target, len(synonyms)).T.float()        # (C, B)
        present = positives.sum(1) > 0
        log_prob = logits.T.log_softmax(dim=1)
        loss_t2i = -((log_prob * positives).sum(1)[present] / positives.sum(1)[present]).mean()
        patches = F.normalize(tokens, dim=-1)                         # (B, g*g, D)
        patch_logits = scale * patches @ text.T
        patch_target = torch.where(purity >= 0.5, patch_class, torch.full_like(patch_class, -1))
        loss_dense = F.cross_entropy(patch_logits.reshape(-1, len(synonyms)), patch_target.reshape(-1),
                                     ignore_index=-1)
        loss = loss_i2t + 0.5 * loss_t2i + config.dense_weight * loss_dense
        if config.hard_class_share > 0:
            wrong = (logits.argmax(1) != target).numpy()
            for c in np.unique(classes):
                crop_error[c] = 0.9 * crop_error[c] + 0.1 * wrong[classes == c].mean()
            sampler.focus(crop_error, config.hard_class_share)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append([loss_i2t.item(), loss_t2i.item(), loss_dense.item()])
    model.eval()
    visual.output_tokens = False
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(out, save(state))
    record = {"settings": {**asdict(config), "precision": "bf16" if bf16 else "fp32"},
              "model_config": model_config_path.name, "model_name": name,
              "seconds": round(time.time() - start, 1), "images": int(len(images)),
              "final_losses": ({"i2t": float(np.mean([h[0] for h in history[-20:]])),
                                "t2i": float(np.mean([h[1] for h in history[-20:]])),
                                "dense": float(np.mean([h[2] for h in history[-20:]]))} if history else None),
              "final_crop_error": {n: round(float(e), 3) for n, e in zip(WORLD_CLASSES + [SKY], crop_error)},
              "loss_curve": history[:: max(1, len(history) // 100)]}
    atomic_write_text(out.with_suffix(".train.json"), json.dumps(record, indent=2))
    return record
