"""The user's own scans: point files with optional labels and cameras.

A scan is a point file (.bin KITTI-style float32 x4, .npy (N,3|4|5), .ply, .pcd, .las, .laz;
datasets.io.read_points). Labels come
from a label field in the file, the last column of an (N, 5) .npy, or a ``<scan>.label`` file
(uint32, SemanticKITTI-style). Label values are raw ids of the vocabulary (mapped through its
learning map) or, for vocabularies without raw ids, class indices.

Cameras and other metadata come from a sidecar ``<scan>.yaml`` / ``<scan>.json`` beside the
scan, or from ``cameras.yaml`` / ``cameras.json`` in its folder (shared by all scans)::

    labels: scan_0001.label          # optional, relative to the sidecar
    cameras:
      - name: front
        image: images/0001.png       # optional, relative to the sidecar
        image_size: [1920, 1080]     # width, height; required when there is no image
        K: [[1000, 0, 960], [0, 1000, 540], [0, 0, 1]]
        T_cam_from_lidar: [[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from zeroseg3d.datasets.base import DATASETS, FrameDataset
from zeroseg3d.datasets.frame import Camera, Frame
from zeroseg3d.datasets.io import (
    POINT_SUFFIXES,
    as_matrix,
    check_image_size_value,
    check_intrinsics,
    check_rigid,
    check_image_size,
    read_image_size,
    read_label_file,
    read_points,
    split_kitti_label,
)
from zeroseg3d.datasets.vocabulary import Vocabulary, build_vocabulary
from zeroseg3d.errors import DataError


def find_scans(path: str | Path) -> list[Path]:
    """Point files at ``path``: the file itself, or the point files in a folder (sorted)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(path, "no such file or folder")
    scans = sorted(p for p in path.iterdir() if p.suffix.lower() in POINT_SUFFIXES)
    if not scans:
        raise DataError(path, f"no point files ({', '.join(POINT_SUFFIXES)})")
    return scans


def _read_sidecar(path: Path) -> dict:
    from zeroseg3d.utils.yaml_text import parse_yaml, read_text_utf8, yaml_problem

    text = read_text_utf8(path, lambda problem: DataError(path, problem))
    try:
        data = json.loads(text) if path.suffix == ".json" else parse_yaml(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise DataError(path, f"unreadable sidecar: {exc if isinstance(exc, json.JSONDecodeError) else yaml_problem(exc)}") from None
    if not isinstance(data, dict):
        raise DataError(path, "a sidecar must hold a mapping")
    return data


def sidecar_for(scan: Path) -> Path | None:
    for candidate in (scan.with_suffix(".yaml"), scan.with_suffix(".json"),
                      scan.parent / "cameras.yaml", scan.parent / "cameras.json"):
        if candidate.is_file():
            return candidate
    return None


def cameras_from_sidecar(data: dict, sidecar: Path) -> list[Camera]:
    entries = data.get("cameras") or []
    if not isinstance(entries, list):
        raise DataError(sidecar, "cameras must be a list of cameras (each with name, K, T_cam_from_lidar)")
    cameras = []
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise DataError(sidecar, f"camera {number} must be a mapping with K and T_cam_from_lidar")
        name = str(entry.get("name", f"cam{number}"))
        for key in ("K", "T_cam_from_lidar"):
            if key not in entry:
                raise DataError(sidecar, f"camera {name!r} lacks {key}")
        try:
            K = np.asarray(entry["K"], dtype=np.float64)
            T = np.asarray(entry["T_cam_from_lidar"], dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise DataError(sidecar, f"camera {name!r}: K and T_cam_from_lidar must be numbers") from None
        K = check_intrinsics(K, sidecar, f"camera {name!r} K")
        T = check_rigid(as_matrix(T, sidecar, f"camera {name!r} T_cam_from_lidar"), sidecar,
                        f"camera {name!r} T_cam_from_lidar")
        image = entry.get("image")
        if image is not None and not isinstance(image, str):
            raise DataError(sidecar, f"camera {name!r}: image must be a file name, not {image!r}")
        image_path = sidecar.parent / image if image else None
        size = entry.get("image_size")
        if size is not None:
            size = check_image_size_value(size, sidecar, f"camera {name!r} image_size")
        if image_path is not None:
            actual = read_image_size(image_path)
            check_image_size(image_path, actual, size)
            size = actual
        if size is None:
            raise DataError(sidecar, f"camera {name!r} needs image_size [width, height] "
                            "when it has no image")
        cameras.append(Camera(name, K, T, size, image_path))
    return cameras


def read_scan(scan: Path, vocabulary: Vocabulary, frame_id: str | None = None) -> Frame:
    points, labels, origin = read_points(scan)
    sidecar = sidecar_for(scan)
    meta = _read_sidecar(sidecar) if sidecar else {}
    cameras = cameras_from_sidecar(meta, sidecar) if sidecar else []
    label_source = scan
    if labels is None:
        declared = meta.get("labels")
        label_path = sidecar.parent / declared if declared else scan.with_suffix(".label")
        if declared or label_path.exists():
            raw = read_label_file(label_path, len(points))
            labels = split_kitti_label(raw)[0] if vocabulary.has_raw_ids else raw.astype(np.int64)
            label_source = label_path
    raw_labels = mapped = None
    if labels is not None:
        if vocabulary.has_raw_ids:
            raw_labels = labels.astype(np.uint32)
            mapped = vocabulary.map_raw(raw_labels, label_source)
        else:
            mapped = labels.astype(np.int64)
            bad = (mapped < -1) | (mapped >= vocabulary.num_classes)
            if bad.any():
                raise DataError(label_source, f"{int(bad.sum())} labels outside 0..{vocabulary.num_classes - 1}")
    return Frame(frame_id=frame_id or scan.stem, points=points, cameras=cameras, labels=mapped,
                 raw_labels=raw_labels, source=scan, origin=origin if origin.any() else None)


def unique_ids(scans: list[Path]) -> list[str]:
    """Frame ids of scan files: their names without the suffix, or, when two share one (a.ply
    and a.las, or one name in two folders), their paths from the folder that holds them all
    ('/' between folders: each folder a sequence). The teacher's cache and the outputs are
    keyed by them."""
    stems = [scan.stem for scan in scans]
    if len(set(stems)) == len(stems):
        return stems
    import os

    resolved = [scan.resolve() for scan in scans]
    common = Path(os.path.commonpath([scan.parent for scan in resolved]))
    return [scan.relative_to(common).as_posix() for scan in resolved]


@DATASETS.register("custom")
class CustomScans(FrameDataset):
    def __init__(self, paths: Sequence[str | Path], vocabulary: Vocabulary | str = "semantickitti"):
        self.vocabulary = (vocabulary if isinstance(vocabulary, Vocabulary)
                           else Vocabulary.load(vocabulary))
        self.scans = list(dict.fromkeys(scan for path in paths for scan in find_scans(path)))
        self._frame_ids = unique_ids(self.scans)

    @classmethod
    def from_config(cls, data_config, split: str) -> "CustomScans":
        return cls([data_config.root], build_vocabulary(data_config))

    @property
    def frame_ids(self) -> list[str]:
        return self._frame_ids

    def load(self, index: int) -> Frame:
        return read_scan(self.scans[index], self.vocabulary, self._frame_ids[index])
