"""The composition root: the one place a Config becomes objects (frames, the seen/unseen
split, the teacher and its cache, training and evaluation sets, the student, the device).
Stages (teacher cache, train, evaluate, predict, demo) ask for what they need here."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from zeroseg3d.config import Config
from zeroseg3d.datasets import build_dataset
from zeroseg3d.datasets.pipeline import SampleBuilder
from zeroseg3d.engine.checkpoint import CheckpointError
from zeroseg3d.engine.data import SegmentationSet
from zeroseg3d.models.segmentor import ZeroShotSegmentor, create_student
from zeroseg3d.utils.device import resolve_device


def class_split(config: Config, vocabulary=None):
    """The seen/unseen split the config asks for, of ``vocabulary`` (default: the config's)."""
    if vocabulary is None:
        from zeroseg3d.datasets.vocabulary import build_vocabulary

        vocabulary = build_vocabulary(config.data)
    return vocabulary.split(config.data.unseen_split, config.data.unseen_classes)


def eval_set(config: Config, split_name: str) -> SegmentationSet:
    """The frames of ``split_name`` as evaluation samples: no augmentation, no teacher."""
    frames = build_dataset(config.data, split_name)
    builder = SampleBuilder(config.data.voxel_size, config.data.pairing, augment=None)
    return SegmentationSet(frames, builder, class_split(config, frames.vocabulary), cache=None, training=False)


def teacher_and_cache(config: Config, vocabulary):
    """The CLIP teacher (its weights loaded) and the cache of its outputs, keyed by what
    decides them."""
    from zeroseg3d.teacher.cache import TeacherCache
    from zeroseg3d.teacher.teacher import Teacher

    teacher = Teacher(config.teacher, vocabulary, config.data.pairing)
    return teacher, TeacherCache(config.teacher.cache_dir, teacher.key)


@dataclass
class Setup:
    """What training needs: the training set, the student, the text embeddings."""

    config: Config
    device: str
    split: object
    text: torch.Tensor
    teacher_key: str
    teacher_identity: str        # the CLIP weights' identity (teacher.loading.weights_identity)
    train_set: SegmentationSet
    model: ZeroShotSegmentor


def build_setup(config: Config, progress: bool = True) -> Setup:
    """The training set (teacher outputs from the cache; labels consolidated over time when
    teacher.temporal.enabled) and a fresh student seeded by run.seed. The CLIP weights load
    only when the text embeddings are not cached yet. Without a loss term that reads the
    teacher's outputs (``LossConfig.uses_teacher``: training on 3D labels alone) no teacher
    cache is read, and frames need no images."""
    from zeroseg3d.teacher.cache import TeacherCache
    from zeroseg3d.teacher.teacher import teacher_outputs_key
    from zeroseg3d.teacher.temporal import consolidate

    device = resolve_device(config.train.device)
    frames = build_dataset(config.data, config.data.split)
    if config.model.in_channels == 4 and len(frames) and not frames[0].points[:, 3].any():
        warnings.warn(f"{frames[0].source or frames.frame_ids[0]}: the first training scan has no intensity (every "
                      "value 0); a student of x, y, z alone (model.in_channels=3) needs none")
    split = class_split(config, frames.vocabulary)
    key, identity, text = teacher_outputs_key(config.teacher, frames.vocabulary, config.data.pairing)
    if text is None:
        teacher, _ = teacher_and_cache(config, frames.vocabulary)
        key, text = teacher.key, teacher.text
    text = text.detach().cpu()
    cache = TeacherCache(config.teacher.cache_dir, key) if config.loss.uses_teacher else None
    labels = cache
    if cache is not None and config.teacher.temporal.enabled:
        labels = consolidate(frames, cache, config.teacher.temporal, progress=progress)
    # the training step augments and voxelizes its batches on its own device (datasets.pipeline.finish_batch)
    builder = SampleBuilder(config.data.voxel_size, config.data.pairing, config.data.augment, on_device=True)
    # the points the 3D labels leave unlabelled are of unseen classes (or ignored): their
    # pseudo label is the teacher's most probable unseen class
    among = np.array(split.unseen) if config.loss.pseudo_among == "unseen" else None
    weights = None
    if among is not None and labels is not None and config.loss.pseudo_prior_power > 0:
        from zeroseg3d.teacher.cache import class_prior, prior_weights

        prior = class_prior(frames, labels, among, split.seen, config.loss.pseudo_min_mass)
        weights = prior_weights(prior, config.loss.pseudo_prior_power)
    train_set = SegmentationSet(frames, builder, split, cache, training=True, seed=config.run.seed,
                                label_cache=labels, pseudo_among=among, pseudo_min_mass=config.loss.pseudo_min_mass,
                                pseudo_weights=weights,
                                object_radius=config.loss.pseudo_object_radius,
                                vote_mass_power=config.loss.pseudo_vote_mass_power,
                                vote_agree=config.loss.pseudo_vote_agree,
                                object_ground=config.loss.pseudo_object_ground)
    torch.manual_seed(config.run.seed)
    model = create_student(config.model, text.shape[1], device)
    return Setup(config, device, split, text, key, identity, train_set, model)


def load_student(state: dict, path: str | Path, config: Config | None = None):
    """(config, student with its weights, in eval mode) of a loaded checkpoint: the checkpoint's
    own config, or ``config`` (that config with overrides)."""
    from zeroseg3d.config import load_config_text

    if config is None:
        config = load_config_text(state["config"], f"{path} (stored config)")
    try:
        model = create_student(config.model, int(state["embed_dim"]), weights=state["model"], where="weights")
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return config, model.eval()
