"""zeroseg3d config: print a resolved config (file + _base_ chain + dotted overrides)."""

from __future__ import annotations


def run(args) -> int:
    from zeroseg3d.config import config_to_yaml, load_config, save_config

    config = load_config(args.config, args.overrides)
    if args.save:
        print(f"wrote {save_config(config, args.save)}")
    else:
        print(config_to_yaml(config), end="")
    return 0


def add_parser(commands) -> None:
    parser = commands.add_parser("config", help="print the resolved config")
    parser.add_argument("config", nargs="?", help="config YAML file (default: built-in defaults)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. data.voxel_size=0.1")
    parser.add_argument("--save", metavar="DIR", help="write DIR/config.yaml instead of printing")
    parser.set_defaults(run=run)
