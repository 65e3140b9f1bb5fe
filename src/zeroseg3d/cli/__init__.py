"""The ``zeroseg3d`` command. Subcommands import their heavy modules only when they run."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from zeroseg3d import __version__
from zeroseg3d.errors import ZeroSeg3DError


def build_parser() -> argparse.ArgumentParser:
    from zeroseg3d.cli import config_cmd, data_cmd, demo_cmd, info_cmd, run_cmds, teacher_cmd, world_cmd

    parser = argparse.ArgumentParser(
        prog="zeroseg3d",
        description="Zero-shot and open-vocabulary LiDAR semantic segmentation with CLIP.",
    )
    parser.add_argument("--version", action="version", version=f"zeroseg3d {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for module in (info_cmd, data_cmd, config_cmd, world_cmd, teacher_cmd, run_cmds, demo_cmd):
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # dotted overrides may also follow the options (`evaluate CKPT --out DIR model.x=1`)
    if extra and isinstance(getattr(args, "overrides", None), list) and all(
            "=" in e and not e.startswith("-") for e in extra):
        args.overrides += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.run(args) or 0)
    except ZeroSeg3DError as exc:
        print(f"zeroseg3d: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zeroseg3d: interrupted", file=sys.stderr)
        return 130
