"""Training samples: frames with their 3D labels as the split allows, the teacher's cached
outputs attached per point, per pair and per image patch, and the student's own labels."""

from __future__ import annotations

import hashlib
import json
import warnings
import zlib

import numpy as np
import torch

from zeroseg3d.datasets.base import FrameDataset
from zeroseg3d.datasets.pipeline import Sample, SampleBuilder, collate_compact
from zeroseg3d.datasets.vocabulary import IGNORE_INDEX, Split
from zeroseg3d.errors import DataError
from zeroseg3d.teacher.cache import TeacherCache, among_mass, cached_pairing, patch_taps, point_labels
from zeroseg3d.teacher.objects import consolidate_objects
from zeroseg3d.utils.device import is_cuda


def hide_unseen(labels: np.ndarray, split: Split, num_classes: int) -> np.ndarray:
    """Training labels: points of unseen classes become unlabelled (transductive setting)."""
    visible = np.zeros(num_classes + 1, dtype=bool)   # last slot: IGNORE_INDEX
    visible[list(split.seen)] = True
    return np.where(visible[labels], labels, IGNORE_INDEX)


class SegmentationSet(torch.utils.data.Dataset):
    """Samples for training (labels of unseen classes hidden, augmentation, teacher outputs)
    or evaluation (true labels, no augmentation). The teacher's patch features come from
    ``cache``, its point labels from ``label_cache`` (default: the same; the consolidated
    labels of teacher/temporal.py otherwise), as the most probable of the classes
    ``pseudo_among`` (default: of all classes; see teacher.cache.point_labels; their
    probabilities times ``pseudo_weights``, one per class of ``pseudo_among``), voted over
    each object of unlabelled points when ``object_radius`` > 0 (teacher.objects; each vote
    weighted by the teacher's mass on ``pseudo_among`` to ``vote_mass_power``; with
    ``vote_agree`` the weights only take labels away); in a frame
    without 3D labels, objects are what stands more than ``object_ground`` metres above the
    ground (0: none). Those pseudo labels, and where the frame's pairs read the teacher's
    patches, are the same in every epoch: each frame's are computed once and kept beside the
    label cache, under kept/<key of these settings>."""

    def __init__(self, frames: FrameDataset, builder: SampleBuilder, split: Split,
                 cache: TeacherCache | None = None, training: bool = True, seed: int = 0,
                 label_cache: TeacherCache | None = None, pseudo_among: np.ndarray | None = None,
                 pseudo_min_mass: float = 0.0, object_radius: float = 0.0, object_ground: float = 0.0,
                 pseudo_weights: np.ndarray | None = None, vote_mass_power: float = 0.0,
                 vote_agree: bool = False):
        self.frames, self.builder, self.split = frames, builder, split
        self.cache, self.training, self.seed = cache, training, seed
        self.label_cache = label_cache if label_cache is not None else cache
        self.pseudo_among, self.pseudo_min_mass, self.pseudo_weights = pseudo_among, pseudo_min_mass, pseudo_weights
        self.object_radius, self.object_ground = object_radius, object_ground
        self.vote_mass_power, self.vote_agree = vote_mass_power, vote_agree
        self.kept = None if self.cache is None else self._kept_cache()
        self.epoch = 0
        self.self_labels: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.frames)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> Sample:
        frame = self.frames[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        outputs = None if self.cache is None else self._teacher_outputs(self.cache, frame)
        # the teacher's cache holds the frame's pairing (its key includes the pairing settings)
        pairing = None if outputs is None else cached_pairing(outputs)
        sample = self.builder(frame, rng, pairing)   # unlabelled frames come with IGNORE_INDEX labels
        if self.training:
            sample.labels = hide_unseen(sample.labels, self.split, self.frames.vocabulary.num_classes)
        if outputs is not None:
            self._attach_teacher(frame, sample, outputs)
        if self.training and self.self_labels:
            sample.point_extras["self_label"] = self.self_labels[frame.frame_id].astype(np.int64)
        return sample

    def points_only(self, index: int) -> Sample:
        """The sample of frame ``index`` as the student sees it, voxelized, without augmentation,
        camera pairing or teacher outputs (what predicting needs); training labels hidden as in
        ``__getitem__``."""
        from zeroseg3d.datasets.frame import Frame

        frame = self.frames[index]
        sample = SampleBuilder(self.builder.voxel_size)(Frame(frame.frame_id, frame.points, labels=frame.labels))
        if self.training:
            sample.labels = hide_unseen(sample.labels, self.split, self.frames.vocabulary.num_classes)
        return sample

    @staticmethod
    def _teacher_outputs(cache: TeacherCache, frame, what: str = "teacher cache") -> dict[str, torch.Tensor]:
        outputs = cache.load(frame.frame_id, frame.num_points)
        if outputs is None:
            raise DataError(cache.path(frame.frame_id),
                            f"frame {frame.frame_id} is missing from the {what} (or stale); "
                            "run `zeroseg3d teacher` with the same config first")
        return outputs

    def _kept_cache(self) -> TeacherCache:
        """Where this set keeps what every epoch's samples of a frame share (``_frame_entries``):
        keyed by the teacher's and the label cache's keys and every setting that decides it."""
        settings = {"format": 2, "teacher": self.cache.key, "labels": self.label_cache.key, "training": self.training,
                    "seen": sorted(int(c) for c in self.split.seen), "classes": self.frames.vocabulary.num_classes,
                    "among": None if self.pseudo_among is None else [int(c) for c in self.pseudo_among],
                    "weights": None if self.pseudo_weights is None else [float(w) for w in self.pseudo_weights],
                    "min_mass": float(self.pseudo_min_mass), "radius": float(self.object_radius),
                    "ground": float(self.object_ground), "vote_mass_power": float(self.vote_mass_power),
                    "vote_agree": bool(self.vote_agree)}
        key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:20]
        return TeacherCache(self.label_cache.root / "kept" / key, key)

    def _frame_entries(self, frame, sample: Sample, outputs: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """What the teacher gives every epoch's sample of ``frame`` alike: teacher_label (N,)
        int64 (-1: none) and teacher_conf (N,) float32, the pseudo labels; pair_taps (P, 4)
        int64, pair_tap_weights (P, 4) float32 and pair_patch (P,) int64, where the pairs read
        the patch table (teacher.cache.patch_taps). Computed once per frame and kept in
        ``kept`` (its file also records the frame's point and pair counts and which points lack
        3D labels: those decide the objects, and the entries are recomputed when any differs)."""
        n, pairs = frame.num_points, len(sample.pairing)
        unlabelled = sample.labels < 0
        stamp = [n, pairs, zlib.crc32(np.packbits(unlabelled))]
        kept = self.kept.load(frame.frame_id)
        if kept is not None and kept["frame"].tolist() == stamp:
            label, conf = np.full(n, -1, np.int64), np.zeros(n, np.float32)
            rows = kept["rows"].numpy().astype(np.int64)
            label[rows], conf[rows] = kept["label"].numpy(), kept["conf"].numpy()
            return {"teacher_label": label, "teacher_conf": conf,
                    "pair_taps": kept["pair_taps"].numpy().astype(np.int64),
                    "pair_tap_weights": kept["pair_tap_weights"].numpy(),
                    "pair_patch": kept["pair_patch"].numpy().astype(np.int64)}
        labels = (outputs if self.label_cache is self.cache
                  else self._teacher_outputs(self.label_cache, frame, "consolidated teacher labels"))
        label, conf = point_labels(labels, self.pseudo_among, self.pseudo_min_mass, self.pseudo_weights)
        # without any 3D label only the ground separates objects (none when object_ground is 0)
        ground = self.object_ground if unlabelled.all() else 0.0
        if self.object_radius > 0 and (ground > 0 or not unlabelled.all()):
            vote_weight = None
            if self.vote_mass_power > 0 and self.pseudo_among is not None:
                vote_weight = among_mass(labels, self.pseudo_among) ** self.vote_mass_power
            label, conf = consolidate_objects(frame.xyz, unlabelled, label, conf, self.frames.vocabulary.num_classes,
                                              self.object_radius, ground_height=ground, vote_weight=vote_weight,
                                              vote_agree=self.vote_agree)
        conf = conf.astype(np.float32)
        try:
            taps, weights, patch, _ = patch_taps(outputs, sample.pairing, frame.cameras)
        except (ValueError, IndexError) as exc:   # cameras changed since the cache was written
            raise DataError(self.cache.path(frame.frame_id), f"does not fit frame {frame.frame_id}'s cameras ({exc}); "
                            "delete it and run `zeroseg3d teacher` again") from None
        rows = np.flatnonzero((label >= 0) | (conf != 0))
        try:
            self.kept.save(frame.frame_id, {
                "frame": torch.tensor(stamp), "rows": torch.from_numpy(rows.astype(np.int32)),
                "label": torch.from_numpy(label[rows].astype(np.int32)), "conf": torch.from_numpy(conf[rows]),
                "pair_taps": torch.from_numpy(taps.astype(np.int32)), "pair_tap_weights": torch.from_numpy(weights),
                "pair_patch": torch.from_numpy(patch.astype(np.int32))})
        except OSError as exc:   # a read-only cache: computed every time, said once per process
            warnings.warn(f"{self.kept.root}: cannot keep what every epoch's samples share ({exc.strerror or exc}); "
                          "computing it again each epoch", RuntimeWarning, stacklevel=2)
        return {"teacher_label": label, "teacher_conf": conf, "pair_taps": taps, "pair_tap_weights": weights,
                "pair_patch": patch}

    def _attach_teacher(self, frame, sample: Sample, outputs: dict[str, torch.Tensor]) -> None:
        entries = self._frame_entries(frame, sample, outputs)
        for name in ("teacher_label", "teacher_conf"):
            sample.point_extras[name] = entries[name]
        for name in ("pair_taps", "pair_tap_weights", "pair_patch"):
            sample.pair_extras[name] = entries[name]
        sample.patch_features = outputs["patch_table"].numpy()


def _one_thread_per_worker(worker_id: int) -> None:
    # torch limits itself to one thread in a loader process; numpy's BLAS would start one
    # thread per core in every worker and oversubscribe the machine
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def make_loader(dataset, batch_sampler, workers: int = 0, device: str = "cpu") -> torch.utils.data.DataLoader:
    """Batches of ``dataset`` (``collate_compact``: ``widen`` them on the device) in the order
    of ``batch_sampler`` (lists of indices), built by ``workers`` processes of one thread each;
    in page-locked memory for a CUDA ``device``, so that the copy to it can overlap the step."""
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=batch_sampler, collate_fn=collate_compact, num_workers=workers,
        worker_init_fn=_one_thread_per_worker if workers else None, pin_memory=is_cuda(device),
        prefetch_factor=4 if workers else None)
