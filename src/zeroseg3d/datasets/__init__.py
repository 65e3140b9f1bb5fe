"""Datasets: readers that produce Frames, vocabularies, and the sample pipeline."""

from zeroseg3d.datasets.base import DATASETS, FrameDataset, build_dataset
from zeroseg3d.datasets.frame import Camera, Frame
from zeroseg3d.datasets.vocabulary import IGNORE_INDEX, Split, Vocabulary

__all__ = ["DATASETS", "FrameDataset", "build_dataset", "Camera", "Frame", "IGNORE_INDEX",
           "Split", "Vocabulary", "open_path"]


def open_path(path, vocabulary=None, image_size=None) -> FrameDataset:
    """The right reader for a path: a SemanticKITTI root (holding sequences/), a sequence
    folder (holding velodyne/), a scan inside a sequence's velodyne/, or custom scans."""
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
    return CustomScans([path], vocabulary or "semantickitti")
