"""zeroseg3d teacher: run the CLIP teacher once over a split and cache its outputs."""

from __future__ import annotations

from pathlib import Path


def run(args) -> int:
    from zeroseg3d.config import load_config, save_config
    from zeroseg3d.datasets import build_dataset
    from zeroseg3d.teacher.cache import TeacherCache
    from zeroseg3d.teacher.run import fill_cache, pseudo_label_quality, shard_from_env, write_quality
    from zeroseg3d.teacher.teacher import Teacher
    from zeroseg3d.teacher.temporal import consolidate

    config = load_config(args.config, args.overrides)
    split_name = args.split or config.data.split
    dataset = build_dataset(config.data, split_name)
    split = dataset.vocabulary.split(config.data.unseen_split, config.data.unseen_classes)
    teacher = Teacher(config.teacher, dataset.vocabulary, config.data.pairing)
    cache = TeacherCache(config.teacher.cache_dir, teacher.key)
    if args.shard:
        shard = args.shard
    else:
        shard = shard_from_env()
    save_config(config, cache.root)
    stats = fill_cache(teacher, dataset, cache, shard)
    print(f"teacher cache {cache.root} (key {teacher.key}): {stats.computed} computed, "
          f"{stats.reused} reused")
    temporal = consolidate(dataset, cache, config.teacher.temporal, shard) if config.teacher.temporal.enabled else None
    if args.report and shard[1] == 1:
        report = pseudo_label_quality(dataset, cache, split)
        print(f"pseudo-label quality on {split_name}, points inside the camera view "
              f"({report['points_in_view']}):")
        print(write_quality(report, Path(cache.root), f"quality_{split_name}"))
        if temporal is not None:
            report = pseudo_label_quality(dataset, temporal, split)
            print(f"consolidated over +-{config.teacher.temporal.window} frames ({report['points_in_view']} "
                  "points labelled):")
            print(write_quality(report, Path(cache.root), f"quality_{split_name}_temporal"))
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
