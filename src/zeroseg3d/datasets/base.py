"""The dataset interface and its registry."""

from __future__ import annotations

from abc import ABC, abstractmethod

from zeroseg3d.datasets.frame import Frame
from zeroseg3d.datasets.vocabulary import Vocabulary
from zeroseg3d.registry import Registry


class FrameDataset(ABC):
    """A sequence of Frames addressable by index or by frame id. Owns its vocabulary."""

    vocabulary: Vocabulary

    @property
    @abstractmethod
    def frame_ids(self) -> list[str]: ...

    @abstractmethod
    def load(self, index: int) -> Frame: ...

    @property
    def frame_sequences(self) -> list[str]:
        """The sequence (drive, street, scene) of each frame; frames of a sequence are in time
        order. Default: the frame id up to its last '/' (SemanticKITTI's XX/NNNNNN)."""
        return [f.rsplit("/", 1)[0] if "/" in f else f for f in self.frame_ids]

    @property
    def prediction_names(self) -> list[str]:
        """Where a prediction file of each frame goes in an output folder, without its suffix:
        the layout the dataset's own evaluation reads. Default: the frame id, '/' as '_'."""
        return [f.replace("/", "_") for f in self.frame_ids]

    def __len__(self) -> int:
        return len(self.frame_ids)

    def __getitem__(self, index: int) -> Frame:
        if not -len(self) <= index < len(self):
            raise IndexError(f"frame index {index} out of range for {len(self)} frames")
        return self.load(index % len(self))

    def index_of(self, frame_id: str) -> int:
        try:
            return self.frame_ids.index(frame_id)
        except ValueError:
            from zeroseg3d.errors import DataError

            sample = ", ".join(self.frame_ids[:5])
            raise DataError(None, f"no frame {frame_id!r}; frames are e.g. {sample}") from None

    def subset(self, frame_ids: list[str]) -> "FrameDataset":
        return FrameSubset(self, [self.index_of(f) for f in frame_ids])


class FrameSubset(FrameDataset):
    def __init__(self, dataset: FrameDataset, indices: list[int]):
        self.dataset, self.indices = dataset, indices
        self.vocabulary = dataset.vocabulary

    @property
    def frame_ids(self) -> list[str]:
        return [self.dataset.frame_ids[i] for i in self.indices]

    @property
    def frame_sequences(self) -> list[str]:
        every = self.dataset.frame_sequences
        return [every[i] for i in self.indices]

    @property
    def prediction_names(self) -> list[str]:
        every = self.dataset.prediction_names
        return [every[i] for i in self.indices]

    def load(self, index: int) -> Frame:
        return self.dataset.load(self.indices[index])


# Readers register their class; each has from_config(data_config, split).
DATASETS: Registry[type[FrameDataset]] = Registry("dataset")


def build_dataset(data_config, split: str | None = None) -> FrameDataset:
    """The reader named by ``data_config.dataset``, for ``split`` (default: the config's)."""
    # Importing the modules registers their readers.
    from zeroseg3d.datasets import custom, nuscenes, semantickitti  # noqa: F401

    return DATASETS.get(data_config.dataset).from_config(data_config, split or data_config.split)
