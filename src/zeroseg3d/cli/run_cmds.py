"""zeroseg3d train / evaluate / predict / export: argparse and printing; the work is in engine/."""

from __future__ import annotations

from pathlib import Path

from zeroseg3d.utils.allocator import keep_freed_memory
from zeroseg3d.utils.device import PRECISIONS


def run_train(args) -> int:
    from zeroseg3d.config import load_config
    from zeroseg3d.engine.train import run_training

    from zeroseg3d.cli import output_folder

    config = load_config(args.config, args.overrides)
    run_dir = output_folder(args.out or str(Path(config.run.output_dir) / config.run.name))
    result = run_training(config, run_dir, resume=args.resume)
    from zeroseg3d.engine import distributed

    if distributed.rank() > 0:
        return 0
    print(f"trained in {result['train_seconds']:.0f} s ({result['steps']} steps): {run_dir}")
    if "metrics" in result:
        _print_metrics(result["metrics"])
    return 0


def _print_metrics(metrics: dict) -> None:
    from zeroseg3d.metrics import format_table

    print(format_table(metrics, metrics.get("unseen_classes", [])))
    fov = metrics["fov"]
    print(f"camera view: mIoU {fov['miou']:.1f}, seen {fov['miou_seen']:.1f}, unseen {fov['miou_unseen']:.1f}, "
          f"hIoU {fov['hiou']:.1f}")


def run_evaluate(args) -> int:
    from zeroseg3d.cli import output_folder
    from zeroseg3d.engine.evaluate import evaluate_checkpoint

    keep_freed_memory()   # frame after frame: no page faults for the same tensors again
    out = output_folder(args.out)
    overrides = list(args.overrides) + ([f"data.root={args.data}"] if args.data else [])
    metrics = evaluate_checkpoint(args.checkpoint, out, args.split, overrides, args.device)
    _print_metrics(metrics)
    print(f"wrote {out / 'metrics.json'}, {out / 'iou_per_class.png'} and {out / 'confusion.png'}")
    return 0


def run_predict(args) -> int:
    import importlib.util

    from zeroseg3d.cli import output_folder
    from zeroseg3d.engine.predict import Segmenter, load_vocabulary_file
    from zeroseg3d.errors import ConfigError

    keep_freed_memory()   # scan after scan: no page faults for the same tensors again
    out = output_folder(args.out)
    segmenter = Segmenter.from_checkpoint(args.checkpoint, args.device, args.precision)
    classes = None
    if args.classes is not None:
        classes = [c for c in args.classes.split(",") if c.strip()]
        if not classes:
            raise ConfigError(f"--classes {args.classes!r} names no class")
    elif args.vocabulary:
        classes = load_vocabulary_file(args.vocabulary)
    rerun_installed = importlib.util.find_spec("rerun") is not None
    on_scan = None
    if args.view and not rerun_installed:   # Open3D, where it is installed, shows the points alone
        from zeroseg3d.engine.visualize import show_interactive

        def on_scan(frame, result, colors):
            if not show_interactive(frame.points, result.labels, colors, frame.frame_id):
                print("no interactive view: pip install 'zeroseg3d[view]' (Rerun) or open3d; PNGs: --pictures")
                return False
            return True

    if args.rerun is not None and Path(args.rerun).is_dir():
        raise ConfigError(f"{args.rerun}: --rerun names the .rrd file to write, and a folder of that name exists")
    written = segmenter.predict_paths(args.inputs, out, classes, args.format, args.pictures, rerun=args.rerun,
                                      spawn_viewer=args.view and rerun_installed and args.rerun is None,
                                      on_scan=on_scan)
    print(f"wrote {len(written)} predictions ({args.format}) to {out}")
    if args.rerun is not None:
        print(f"wrote {args.rerun}: open it with `rerun {args.rerun}`")
        if args.view and rerun_installed:
            import subprocess
            import sys

            subprocess.Popen([sys.executable, "-m", "rerun", str(args.rerun)])
    return 0


def run_export(args) -> int:
    from zeroseg3d.engine.bundle import export_bundle

    out = export_bundle(args.checkpoint, args.out)
    print(f"wrote {out}: predicts with any class names without the teacher's files "
          f"(zeroseg3d predict {out} SCANS --classes ...)")
    return 0


def add_parser(commands) -> None:
    from zeroseg3d.engine.export import FORMATS

    train = commands.add_parser("train", help="train the student (CLIP-guided, then self-training)")
    train.add_argument("config")
    train.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.epochs_guided=3")
    train.add_argument("--out", help="run folder (default run.output_dir/run.name)")
    train.add_argument("--resume", help="checkpoint to resume from, or 'auto' for the run's last.pt")
    train.set_defaults(run=run_train)

    evaluate = commands.add_parser("evaluate", help="metrics of a checkpoint on a split")
    evaluate.add_argument("checkpoint")
    evaluate.add_argument("overrides", nargs="*", help="dotted overrides of the stored config")
    evaluate.add_argument("--data", help="dataset root (default: the one it was trained on)")
    evaluate.add_argument("--split", default="val")
    evaluate.add_argument("--out", required=True, help="folder for metrics.json and the IoU chart")
    evaluate.add_argument("--device", default="auto")
    evaluate.set_defaults(run=run_evaluate)

    predict = commands.add_parser("predict", help="segment scans into any class names")
    predict.add_argument("checkpoint", help="a checkpoint file or an exported bundle folder")
    predict.add_argument("inputs", nargs="+", help="scan files, folders or SemanticKITTI sequences")
    predict.add_argument("--classes", help='comma-separated names, e.g. "car,person,fire hydrant"')
    predict.add_argument("--vocabulary", help="a vocabulary YAML or a text file of names")
    predict.add_argument("--format", default="ply", choices=FORMATS,
                         help="ply (default): coloured points with label and confidence fields, named after the "
                              "frame; las, laz: LAS 1.4 with the class as classification, named in its "
                              "Classification Lookup VLR, and a confidence extra dimension (a LAS/LAZ scan comes "
                              "back as a copy of itself, every attribute kept); label: "
                              "SemanticKITTI .label as OUT/sequences/XX/predictions/NNNNNN.label; nuscenes: "
                              "lidarseg .bin as OUT/<LIDAR_TOP token>_lidarseg.bin")
    predict.add_argument("--out", required=True)
    predict.add_argument("--pictures", action="store_true",
                         help="also write per scan a bird's-eye PNG and, per camera image, the projected points "
                         "coloured by class (beside the ground truth where the scan has labels)")
    predict.add_argument("--rerun", metavar="FILE.rrd",
                         help="also record every scan for the Rerun viewer: points by class with their confidence, "
                         "ground truth, camera images with their projected points, poses on a timeline "
                         "(needs rerun-sdk: pip install 'zeroseg3d[view]'; open with `rerun FILE.rrd`)")
    predict.add_argument("--view", action="store_true",
                         help="show the scans in the Rerun viewer as they are segmented (Open3D when rerun-sdk is "
                         "not installed)")
    predict.add_argument("--device", default="auto")
    predict.add_argument("--precision", choices=PRECISIONS,
                         help="the network's precision (default: the one it trained in; auto predicts in bf16 on a "
                              "CPU with bfloat16 units, avx512_bf16 or AMX, and in fp32 on other CPUs)")
    predict.set_defaults(run=run_predict)

    export = commands.add_parser("export", help="a self-contained model folder: student, CLIP text tower, "
                                 "vocabulary, config (safetensors + JSON)")
    export.add_argument("checkpoint")
    export.add_argument("out", help="the bundle folder to write")
    export.set_defaults(run=run_export)
