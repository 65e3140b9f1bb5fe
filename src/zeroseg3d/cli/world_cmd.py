"""zeroseg3d world: generate the synthetic driving world."""

from __future__ import annotations

import os
from pathlib import Path

from zeroseg3d.world.config import ClipTrainConfig
from zeroseg3d.world.generate import HELDOUT_FIRST, HELDOUT_SET, IMAGE_SET, generate_world, render_image_set


def run_generate(args) -> int:
    manifest = generate_world(args.out, args.sequences, args.frames, seed=args.seed,
                              start=args.start, workers=args.workers)
    print(f"wrote sequences {', '.join(manifest['sequences'])} to {args.out}")
    if args.images:
        folder = render_image_set(Path(args.out) / IMAGE_SET, args.images, args.seed, args.workers)
        print(f"wrote {args.images} camera-only images to {folder}")
    if args.heldout_images:
        folder = render_image_set(Path(args.out) / HELDOUT_SET, args.heldout_images, args.seed, args.workers,
                                  first=HELDOUT_FIRST)
        print(f"wrote {args.heldout_images} held-out camera-only images to {folder}")
    return 0


def _sequences(text: str | None) -> list[str] | None:
    return [s.strip() for s in text.split(",") if s.strip()] if text else None


def run_train_clip(args) -> int:
    import json

    from zeroseg3d.utils.atomic import atomic_write_text
    from zeroseg3d.world.clip_quality import evaluate_world_clip
    from zeroseg3d.world.clip_training import image_folders, train_world_clip

    config = ClipTrainConfig(steps=args.steps, batch_size=args.batch_size, seed=args.seed, threads=args.threads,
                             precision=args.precision)
    folders = image_folders(args.world, _sequences(args.sequences))
    if (Path(args.world) / IMAGE_SET).is_dir():
        folders.append(Path(args.world) / IMAGE_SET)
    record = train_world_clip(folders, args.out, config)
    print(f"trained the demo teacher in {record['seconds']:.0f} s: {args.out} "
          f"(+ {record['model_config']})")
    eval_folders = (image_folders(args.world, _sequences(args.eval_sequences)) if args.eval_sequences
                     else [Path(args.world) / HELDOUT_SET] if (Path(args.world) / HELDOUT_SET).is_dir() else [])
    if eval_folders:
        quality = evaluate_world_clip(args.out, eval_folders, seed=args.seed)
        path = Path(args.out).with_suffix(".quality.json")
        atomic_write_text(path, json.dumps(quality, indent=2))
        print(format_clip_quality(quality))
        print(f"wrote {path}")
    return 0


def format_clip_quality(quality: dict) -> str:
    lines = [f"held-out images: {quality['images']}; crop zero-shot accuracy "
             f"{100 * quality['crop_accuracy']:.1f}% (chance {100 * quality['chance']:.1f}%); "
             f"dense pixel accuracy {100 * quality['pixel_accuracy']:.1f}%, mIoU {100 * quality['pixel_miou']:.1f}%",
             f"{'class':<14} {'crop acc':>9} {'pixel IoU':>10}"]
    for name, accuracy in quality["crop_accuracy_per_class"].items():
        iou = quality["pixel_iou_per_class"][name]
        lines.append(f"{name:<14} {'-' if accuracy is None else f'{100 * accuracy:8.1f}%':>9} "
                     f"{'-' if iou is None else f'{100 * iou:9.1f}%':>10}")
    return "\n".join(lines)


def add_parser(commands) -> None:
    from zeroseg3d.cli import non_negative_int, positive_int

    world = commands.add_parser("world", help="the synthetic world: generate scenes")
    sub = world.add_subparsers(dest="world_command", metavar="ACTION")
    sub.required = True
    gen = sub.add_parser("generate", help="write synthetic sequences in SemanticKITTI layout")
    gen.add_argument("--out", required=True, help="output root (gets sequences/XX/...)")
    gen.add_argument("--sequences", type=positive_int, default=2, help="number of sequences (streets)")
    gen.add_argument("--frames", type=positive_int, default=10, help="frames per sequence")
    gen.add_argument("--seed", type=non_negative_int, default=0)
    gen.add_argument("--start", type=non_negative_int, default=0, help="number of the first sequence")
    gen.add_argument("--images", type=non_negative_int, default=0,
                     help=f"also render this many camera-only images into OUT/{IMAGE_SET} (teacher data)")
    gen.add_argument("--heldout-images", type=non_negative_int, default=0,
                     help=f"also render this many camera-only images of other streets into OUT/{HELDOUT_SET} "
                     "(to measure the teacher on)")
    gen.add_argument("--workers", type=positive_int, default=min(2, os.cpu_count() or 1),
                     help="processes rendering frames in parallel")
    gen.set_defaults(run=run_generate)
    clip = sub.add_parser("train-clip", help="train the demo teacher (a small CLIP) on the world's images")
    clip.add_argument("--world", required=True, help="world root made by `world generate`")
    clip.add_argument("--out", required=True, help="checkpoint to write (.safetensors); its model "
                      "config goes beside it as .json")
    clip.add_argument("--seed", type=non_negative_int, default=0)
    clip.add_argument("--steps", type=non_negative_int, default=ClipTrainConfig.steps)
    clip.add_argument("--batch-size", type=positive_int, default=ClipTrainConfig.batch_size,
                      help=f"image crops per step (default {ClipTrainConfig.batch_size})")
    clip.add_argument("--threads", type=positive_int, default=min(2, os.cpu_count() or 1))
    clip.add_argument("--precision", choices=("auto", "bf16", "fp32"), default=ClipTrainConfig.precision,
                      help="the towers' forward in bfloat16 (auto: where the CPU has bfloat16 units)")
    clip.add_argument("--sequences", help="comma-separated training sequences (default: all); "
                      f"WORLD/{IMAGE_SET} is used too when present")
    clip.add_argument("--eval-sequences", help="comma-separated held-out sequences to measure quality on "
                      f"(default: WORLD/{HELDOUT_SET} when present)")
    clip.set_defaults(run=run_train_clip)
