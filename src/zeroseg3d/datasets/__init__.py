"""Datasets: readers that produce Frames, vocabularies, and the sample pipeline."""

from zeroseg3d.datasets.base import DATASETS, FrameDataset, build_dataset
from zeroseg3d.datasets.frame import Camera, Frame
from zeroseg3d.datasets.vocabulary import IGNORE_INDEX, Split, Vocabulary

__all__ = ["DATASETS", "FrameDataset", "build_dataset", "Camera", "Frame", "IGNORE_INDEX",
           "Split", "Vocabulary", "open_path"]


def open_path(path, vocabulary=None, image_size=None) -> FrameDataset:
    """The right reader for a path: a SemanticKITTI root (holding sequences/), a sequence
    folder (holding velodyne/), a scan inside a sequence's velodyne/, a nuScenes devkit root
    (holding a v1.0-* table folder: every keyframe of every scene), or custom scans."""
    from pathlib import Path

    from zeroseg3d.datasets.custom import CustomScans
    from zeroseg3d.datasets.semantickitti import SemanticKITTI

    path = Path(path)
    if (path / "sequences").is_dir():
        return SemanticKITTI.from_root(path, split="all", vocabulary=vocabulary or "semantickitti",
                                       image_size=image_size)
    if (path / "velodyne").is_dir():
        return SemanticKITTI([path], vocabulary or "semantickitti", image_size)
    if path.suffix == ".bin" and path.parent.name == "velodyne" and (path.parent.parent / "calib.txt").is_file():
        sequence = path.parent.parent
        dataset = SemanticKITTI([sequence], vocabulary or "semantickitti", image_size)
        return dataset.subset([f"{sequence.name}/{path.stem}"])
    versions = sorted(p.name for p in path.glob("v1.0-*") if (p / "sample.json").is_file()) if path.is_dir() else []
    if versions:
        from zeroseg3d.datasets.nuscenes import NuScenesLidarSeg

        # the full tables when several versions are there
        version = "v1.0-trainval" if "v1.0-trainval" in versions else versions[0]
        return NuScenesLidarSeg(path, version=version, split="all", vocabulary=vocabulary or "nuscenes")
    return CustomScans([path], vocabulary or "semantickitti")
