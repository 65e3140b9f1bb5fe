"""zeroseg3d demo: the whole pipeline on the synthetic world."""

from __future__ import annotations


def run(args) -> int:
    from zeroseg3d.engine.demo import run_demo

    metrics = run_demo(args.out, quick=args.quick, seed=args.seed, overrides=args.overrides)
    fov = metrics["fov"]
    print(f"demo finished in {metrics['seconds']:.0f} s; report: {args.out}/report.md")
    print(f"student on val, full scan: mIoU {metrics['miou']:.1f}, seen {metrics['miou_seen']:.1f}, "
          f"unseen {metrics['miou_unseen']:.1f}, hIoU {metrics['hiou']:.1f}")
    print(f"student on val, camera view: mIoU {fov['miou']:.1f}, seen {fov['miou_seen']:.1f}, "
          f"unseen {fov['miou_unseen']:.1f}, hIoU {fov['hiou']:.1f}")
    checks = metrics["checks"]
    failed = [name for name, ok in checks.items() if not ok]
    print(f"checks: {len(checks) - len(failed)} of {len(checks)} passed" + "".join(f"\n  FAILED: {n}" for n in failed))
    return 0


def add_parser(commands) -> None:
    from zeroseg3d.cli import non_negative_int

    parser = commands.add_parser("demo", help="run the whole method on the synthetic world")
    parser.add_argument("--out", default="runs/demo", help="report folder (default runs/demo)")
    parser.add_argument("--quick", action="store_true", help="a small, fast variant (for CI)")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. train.epochs_self=0")
    parser.set_defaults(run=run)
