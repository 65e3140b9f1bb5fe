"""zeroseg3d teacher: run the CLIP teacher once over a split and cache its outputs."""

from __future__ import annotations


def run(args) -> int:
    from zeroseg3d.config import load_config
    from zeroseg3d.engine.teacher_cache import cache_teacher
    from zeroseg3d.metrics import format_table
    from zeroseg3d.teacher.run import shard_from_env

    config = load_config(args.config, args.overrides)
    split_name = args.split or config.data.split
    result = cache_teacher(config, (split_name,), args.shard or shard_from_env(),
                           report=(split_name,) if args.report else ())
    cache, stats = result["cache"], result["stats"][split_name]
    print(f"teacher cache {cache.root} (key {cache.key}): {stats.computed} computed, {stats.reused} reused")
    for name, reports in result["quality"].items():
        frame = reports["frame"]
        print(f"pseudo-label quality on {name}, points inside the camera view ({frame['points_in_view']}):")
        print(format_table(frame, frame["unseen_classes"]))
        if reports["temporal"] is not None:
            print(f"consolidated over +-{config.teacher.temporal.window} frames "
                  f"({reports['temporal']['points_in_view']} points labelled):")
            print(format_table(reports["temporal"], reports["temporal"]["unseen_classes"]))
    return 0


def add_parser(commands) -> None:
    from zeroseg3d.cli import shard_spec

    parser = commands.add_parser("teacher", help="cache the CLIP teacher's outputs for a split")
    parser.add_argument("config", help="config YAML file")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. teacher.readout=tokens")
    parser.add_argument("--split", help="dataset split (default: data.split)")
    parser.add_argument("--shard", type=shard_spec, help="I/K: compute the I-th of K shards (1-based); "
                        "under torchrun the rank decides")
    parser.add_argument("--no-report", dest="report", action="store_false",
                        help="skip the pseudo-label quality report")
    parser.set_defaults(run=run)
