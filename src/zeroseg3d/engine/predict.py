"""Inference API: a trained student segments any scan into any list of class names.

    from zeroseg3d.engine.predict import Segmenter
    segmenter = Segmenter.from_checkpoint("runs/world/checkpoints/self.pt")
    result = segmenter.predict(points, classes=["car", "person", "fire hydrant"])
    result.labels, result.scores, result.class_names
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from zeroseg3d.datasets.frame import Frame
from zeroseg3d.datasets.pipeline import SampleBuilder
from zeroseg3d.datasets.vocabulary import Vocabulary, normalize_name
from zeroseg3d.engine.checkpoint import CheckpointError, load_checkpoint
from zeroseg3d.engine.evaluate import predict_logits
from zeroseg3d.errors import ConfigError, DataError


@dataclass
class Prediction:
    labels: np.ndarray        # (N,) indices into class_names
    scores: np.ndarray        # (N,) softmax probability of the predicted class
    class_names: list[str]


class Segmenter:
    def __init__(self, model, config, vocabulary: list[str], text_embeddings: torch.Tensor, device: str = "cpu",
                 teacher_identity: str | None = None, clip_loader=None, synonyms: dict | None = None,
                 workdir: Path | None = None, precision: str | None = None):
        """``clip_loader``: returns the CLIP text tower for new names (default: the teacher the
        config names); ``synonyms``: the prompts' words per known class name (default: the
        config's vocabulary); ``workdir``: where training ran, for the config's relative paths;
        ``precision``: the network's (utils/device.py; default the one it trained in)."""
        self.model = model.to(device).eval()   # as trained: what bundles export
        self.teacher_identity = teacher_identity   # the CLIP weights the student was trained with
        self.config = config
        self.vocabulary = list(vocabulary)
        self.text_embeddings = text_embeddings.float()
        self.device = device
        self.precision = precision or config.train.precision
        self.builder = SampleBuilder(config.data.voxel_size, config.data.pairing, augment=None)
        self._clip = None
        self.workdir = workdir
        self._clip_loader = clip_loader
        self._synonyms = synonyms
        self._text_cache: dict[tuple, torch.Tensor] = {tuple(self.vocabulary): self.text_embeddings}

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", precision: str | None = None) -> "Segmenter":
        """From a checkpoint file or an exported bundle folder (engine/bundle.py); ``precision``
        (utils/device.py) replaces the one the student trained in."""
        from zeroseg3d.engine.bundle import is_bundle, load_bundle
        from zeroseg3d.utils.device import resolve_device

        if is_bundle(path):
            segmenter = load_bundle(path, resolve_device(device))
            segmenter.precision = precision or segmenter.precision
            return segmenter
        state = load_checkpoint(path)
        from zeroseg3d.engine.builder import load_student

        config, model = load_student(state, path)
        text = state["text_embeddings"]
        identity = state.get("teacher_identity")
        # the config's relative paths are relative to where training ran: found from the run folder
        workdir = state.get("workdir_from_run")
        workdir = (Path(path).parent.parent / workdir
                   if isinstance(workdir, str) and not Path(workdir).is_absolute() else None)
        return cls(model, config, state["vocabulary"], text, resolve_device(device),
                   identity if isinstance(identity, str) else None, workdir=workdir, precision=precision)

    # -- vocabularies ---------------------------------------------------------------------
    def class_names(self, classes: Sequence[str] | None) -> list[str]:
        """The names ``classes`` stands for (the checkpoint's vocabulary for None), checked:
        not empty, none listed twice."""
        if classes is None:
            return self.vocabulary
        classes = [c.strip() for c in classes if c.strip()]
        if not classes:
            raise ConfigError("the class list is empty")
        seen: dict[str, str] = {}
        for name in classes:
            if normalize_name(name) in seen:
                raise ConfigError(f"class {name!r} is listed twice (as {seen[normalize_name(name)]!r} too)")
            seen[normalize_name(name)] = name
        return classes

    def text_for(self, classes: Sequence[str] | None) -> tuple[list[str], torch.Tensor]:
        """Class names and their unit text embeddings; new names go through the CLIP text
        tower named in the checkpoint's config (its weights must be reachable)."""
        if classes is None:
            return self.vocabulary, self.text_embeddings
        classes = self.class_names(classes)
        key = tuple(classes)
        if key not in self._text_cache:
            self._text_cache[key] = self._encode(classes)
        return classes, self._text_cache[key]

    def _encode(self, classes: list[str]) -> torch.Tensor:
        from zeroseg3d.teacher.loading import load_clip
        from zeroseg3d.teacher.text import encode_classes, templates_for

        if self._clip is None:
            self._clip = self._clip_loader() if self._clip_loader else load_clip(self._teacher_config(), "cpu")
        lookup = {normalize_name(n): words for n, words in self.synonyms().items()}
        synonyms = [lookup.get(normalize_name(c), (c,)) for c in classes]
        text = encode_classes(self._clip.model, self._clip.tokenizer, synonyms,
                              templates_for(self.config.teacher.templates))
        if text.shape[1] != self.model.embed_dim:
            raise CheckpointError(f"the text tower gives {text.shape[1]}-d embeddings, the student "
                                  f"was trained for {self.model.embed_dim}-d: use the teacher it was trained with")
        return text.float()

    def synonyms(self) -> dict[str, tuple[str, ...]]:
        """The prompt words of each class of the training vocabulary."""
        if self._synonyms is None:
            from zeroseg3d.datasets.vocabulary import build_vocabulary

            known = build_vocabulary(self.config.data)
            self._synonyms = {n: known.synonyms(i) for i, n in enumerate(known.names)}
        return self._synonyms

    def open_input(self, path: str | Path):
        """The scans at ``path`` (datasets.open_path). Labels inside the user's own scan files
        are read in the vocabulary the model trained with (its own class indices or raw ids),
        where that vocabulary is at hand; SemanticKITTI's otherwise, as for any custom scans."""
        from zeroseg3d.datasets import open_path
        from zeroseg3d.datasets.custom import CustomScans
        from zeroseg3d.datasets.vocabulary import build_vocabulary
        from zeroseg3d.errors import ZeroSeg3DError

        dataset = open_path(path)
        if isinstance(dataset, CustomScans):
            try:
                vocabulary = build_vocabulary(self.config.data)
            except ZeroSeg3DError:   # a vocabulary file left on the machine that trained it
                return dataset
            dataset = CustomScans([path], vocabulary)
        return dataset

    def _teacher_config(self):
        """The stored teacher config with what a file must never decide taken out: weights load
        without unpickling, and only when they are the ones the student was trained with."""
        from dataclasses import replace

        from zeroseg3d.teacher.loading import weights_identity

        config = replace(self.config.teacher, allow_unsafe_pickle=False)
        moved = {}
        for key in ("model_config", "checkpoint"):
            value = getattr(config, key)
            if value and not Path(value).is_absolute() and not Path(value).exists() and self.workdir is not None:
                moved[key] = str(self.workdir / value)
        config = replace(config, **moved)
        if self.teacher_identity is not None:
            found = weights_identity(config)
            if found != self.teacher_identity:
                raise CheckpointError(
                    f"the teacher weights the checkpoint's config names ({found}) are not the ones the "
                    f"student was trained with ({self.teacher_identity}); new class names need those")
        return config

    # -- prediction -----------------------------------------------------------------------
    @functools.cached_property
    def network(self) -> torch.nn.Module:
        """The student that predicts: a copy of ``model`` with its batch norms folded into the
        layers before them (models/fold.py), the same outputs within float32 rounding."""
        from zeroseg3d.models.fold import fold_batch_norms

        return fold_batch_norms(copy.deepcopy(self.model))

    @torch.no_grad()
    def predict(self, points: np.ndarray | Frame, classes: Sequence[str] | None = None) -> Prediction:
        frame = points if isinstance(points, Frame) else _frame_from_array(points)
        names, text = self.text_for(classes)
        # the student reads points only: no pairing with the cameras (pictures pair on their own)
        sample = self.builder(Frame(frame.frame_id, frame.points))
        logits = predict_logits(self.network, text, sample, self.device, self.precision, frame.source)
        scores, labels = logits.softmax(dim=1).max(dim=1)
        return Prediction(labels.numpy(), scores.numpy(), names)

    def predict_paths(self, inputs: Sequence[str | Path], out: str | Path, classes: Sequence[str] | None = None,
                      fmt: str = "ply", pictures: bool = False, rerun: str | Path | None = None,
                      spawn_viewer: bool = False, on_scan=None, progress: bool = True) -> list[Path]:
        """Predict every scan of ``inputs`` (files, folders of scans, SemanticKITTI sequences or
        roots, nuScenes roots) into ``out`` in format ``fmt`` (engine.export.FORMATS), with the
        model loaded and the names encoded once. A dataset's own format goes in the layout its
        evaluation reads (``FrameDataset.prediction_names``: SemanticKITTI's
        sequences/XX/predictions/NNNNNN.label, nuScenes' <LIDAR_TOP token>_lidarseg.bin), PLY
        files flat under the frame ids; with ``pictures``, a bird's-eye view and camera
        overlays per scan (ground truth beside them where the scan has labels); with ``rerun``
        (an .rrd path) or ``spawn_viewer``, every scan recorded for the Rerun viewer
        (engine.rerun_view). ``on_scan(frame, prediction, colors)`` is called after each scan;
        returning False stops calling it. Returns the prediction files written."""
        import contextlib

        from tqdm import tqdm

        from zeroseg3d.engine.export import dataset_raw_ids, palette, write_prediction
        from zeroseg3d.geometry.projection import pair_points

        names = self.class_names(classes)
        raw_ids = dataset_raw_ids(names, fmt)   # names the format cannot store: said before any work
        names, _ = self.text_for(names)
        colors = palette(names)
        out = Path(out)
        datasets = [(path, self.open_input(path)) for path in inputs]
        # each scan's files: a dataset's own format in the layout its evaluation reads, PLY files
        # and pictures under the frame ids; two scans that would write one file are said now
        stems = [[out / f.replace("/", "_") for f in dataset.frame_ids] for _, dataset in datasets]
        targets = stems if raw_ids is None else [[out / n for n in dataset.prediction_names] for _, dataset in datasets]
        _refuse_shared_names(datasets, targets)
        if pictures:
            _refuse_shared_names(datasets, stems)
        written = []
        with contextlib.ExitStack() as stack:
            recorder = None
            if rerun is not None or spawn_viewer:
                from zeroseg3d.engine.rerun_view import RerunRecorder

                recorder = stack.enter_context(RerunRecorder(names, colors, rerun, spawn=spawn_viewer))
            for (path, dataset), of_stems, of_targets in zip(datasets, stems, targets):
                for index in tqdm(range(len(dataset)), desc=str(path), unit="scan", disable=not progress):
                    frame = dataset[index]
                    result = self.predict(frame, names)
                    stem = of_stems[index]
                    written.append(write_prediction(of_targets[index], fmt, frame.points, result.labels, names,
                                                    colors, raw_ids, frame.origin, result.scores, frame.source))
                    if pictures or recorder is not None:
                        pairing = pair_points(frame.xyz, frame.cameras, self.config.data.pairing)
                        truth = truth_in(names, frame, dataset.vocabulary)
                    if pictures:
                        from zeroseg3d.engine.visualize import scan_pictures

                        scan_pictures(frame, pairing, result.labels, truth, names, colors, out, stem.name)
                    if recorder is not None:
                        recorder.add(frame, result.labels, result.scores, pairing, truth)
                    if on_scan is not None and on_scan(frame, result, colors) is False:
                        on_scan = None
        return written


def _refuse_shared_names(datasets: list, names: list[list[Path]]) -> None:
    """ConfigError naming two scans of ``datasets`` ((input, dataset) pairs) whose ``names``
    (one list per dataset) are the same: the second would overwrite the first."""
    first: dict[Path, tuple] = {}
    for (path, dataset), of_dataset in zip(datasets, names):
        for frame_id, name in zip(dataset.frame_ids, of_dataset):
            other = first.setdefault(name, (path, frame_id))
            if other != (path, frame_id):
                raise ConfigError(f"{other[1]} of {other[0]} and {frame_id} of {path} would both write "
                                  f"{name}.*; predict them into different --out folders")


def truth_in(names: list[str], frame: Frame, vocabulary: Vocabulary) -> np.ndarray | None:
    """The scan's labels as indices into ``names`` (-1 where a class is not among them), or None."""
    if frame.labels is None:
        return None
    index = {normalize_name(n): i for i, n in enumerate(names)}
    lookup = np.array([index.get(normalize_name(n), -1) for n in vocabulary.names] + [-1])
    return lookup[np.where(frame.labels >= 0, frame.labels, len(vocabulary.names))]


def _frame_from_array(points: np.ndarray) -> Frame:
    from zeroseg3d.datasets.io import check_points

    points = np.asarray(points, dtype=np.float32)
    if points.ndim == 2 and points.shape[1] == 3:
        points = np.concatenate([points, np.zeros((len(points), 1), np.float32)], axis=1)
    return Frame("array", check_points(points, "points array"))


def load_vocabulary_file(path: str | Path) -> list[str]:
    """Class names from a vocabulary YAML, or a text file with one name per line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "vocabulary file not found")
    if path.suffix in (".yaml", ".yml"):
        return Vocabulary.load(path).names
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
