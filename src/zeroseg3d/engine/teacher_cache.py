"""Stage: the CLIP teacher run once over the frames of some splits, its outputs cached; the
labels consolidated over time; the quality of its pseudo labels against the 3D ground truth."""

from __future__ import annotations

from pathlib import Path

from zeroseg3d.config import Config, save_config


def cache_teacher(config: Config, splits: tuple[str, ...] = ("train",), shard: tuple[int, int] = (0, 1),
                  report: tuple[str, ...] = (), temporal: bool | None = None, progress: bool = True) -> dict:
    """Fill the teacher cache for this ``shard`` (index, count) of the frames of every split in
    ``splits`` (frames already cached are kept), consolidate their labels over time when
    ``temporal`` (default: teacher.temporal.enabled), and for each split in ``report`` measure
    the pseudo labels inside the camera view, written to the cache folder as quality_SPLIT.json
    (and quality_SPLIT_temporal.json). The resolved config is saved beside the cache.

    Returns {"cache": the cache, "stats": {split: CacheStats}, "quality": {split: {"frame":
    report, "temporal": report or None}}}."""
    from zeroseg3d.datasets import build_dataset
    from zeroseg3d.engine.builder import class_split, teacher_and_cache
    from zeroseg3d.teacher.run import fill_cache, pseudo_label_quality, write_quality
    from zeroseg3d.teacher.temporal import consolidate

    temporal = config.teacher.temporal.enabled if temporal is None else temporal
    datasets = {name: build_dataset(config.data, name) for name in dict.fromkeys(splits + report)}
    teacher, cache = teacher_and_cache(config, next(iter(datasets.values())).vocabulary)
    save_config(config, cache.root)
    stats, quality, consolidated = {}, {}, {}
    for name in splits:
        stats[name] = fill_cache(teacher, datasets[name], cache, shard, progress=progress)
        if temporal:
            consolidated[name] = consolidate(datasets[name], cache, config.teacher.temporal, shard,
                                             progress=progress)
    if shard[1] > 1:   # the other shards' frames may be missing still: no report
        return {"cache": cache, "stats": stats, "quality": quality}
    for name in report:
        dataset = datasets[name]
        split = class_split(config, dataset.vocabulary)
        quality[name] = {"frame": pseudo_label_quality(dataset, cache, split), "temporal": None}
        write_quality(quality[name]["frame"], Path(cache.root), f"quality_{name}")
        if temporal:
            labels = consolidated.get(name) or consolidate(dataset, cache, config.teacher.temporal, progress=False)
            quality[name]["temporal"] = pseudo_label_quality(dataset, labels, split)
            write_quality(quality[name]["temporal"], Path(cache.root), f"quality_{name}_temporal")
    return {"cache": cache, "stats": stats, "quality": quality}
