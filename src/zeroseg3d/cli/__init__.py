"""The ``zeroseg3d`` command. Subcommands import their heavy modules only when they run."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Sequence

from zeroseg3d import __version__
from zeroseg3d.errors import ZeroSeg3DError

PACKAGE = Path(__file__).resolve().parents[1]


def _int_at_least(lowest: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < lowest:
            raise argparse.ArgumentTypeError(f"must be at least {lowest}, not {value}")
        return value

    return parse


positive_int = _int_at_least(1)        # argparse type: an integer >= 1
non_negative_int = _int_at_least(0)    # argparse type: an integer >= 0


def shard_spec(text: str) -> tuple[int, int]:
    """argparse type: ``I/K`` (1 <= I <= K) -> (I - 1, K)."""
    parts = text.split("/")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not I/K (the I-th of K shards, e.g. 1/4)")
    index, count = int(parts[0]), int(parts[1])
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"{text!r}: need 1 <= I <= K")
    return index - 1, count


def output_folder(path: str):
    """``--out``: a folder (made when missing), never an existing file."""
    from pathlib import Path

    if not path.strip():   # Path("") is the working directory: never meant
        raise ZeroSeg3DError(f"--out {path!r} is empty: name the folder to write")
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ZeroSeg3DError(f"{folder}: --out must be a folder, and a file of that name exists")
    return folder


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


def _one_line_warnings(show):
    """``warnings.showwarning`` that writes zeroseg3d's own warnings (a partial labels folder, a
    cache folder that cannot be written) as one line, like its errors, and hands other
    libraries' to ``show``. A progress bar on the terminal is cleared for the line and drawn again
    below it (tqdm.write)."""
    def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
        if Path(filename).resolve().is_relative_to(PACKAGE):
            from tqdm import tqdm

            tqdm.write(f"zeroseg3d: warning: {message}", file=sys.stderr if file is None else file)
        else:
            show(message, category, filename, lineno, file, line)

    return show_warning


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
        with warnings.catch_warnings():   # restores the caller's warning display afterwards
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            return int(args.run(args) or 0)
    except ZeroSeg3DError as exc:
        print(f"zeroseg3d: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zeroseg3d: interrupted", file=sys.stderr)
        return 130
