"""The teacher's on-disk cache: one safetensors file per frame, written atomically.

A file is trusted only when it parses, its key (weights, prompts, settings) is the current
one, its checksum matches its tensors and its point count matches the frame; anything else is
recomputed. safetensors cannot execute code. The checksum is a CRC-32: it is there to catch
damage (whoever can write a file can write its checksum too), and training checks a file per
sample, where a SHA-256 costs more than twice as much (docs/results.md).

A frame's entries: its points' class probabilities and labels (``point_tensors``), the
pairing of its points with camera pixels and the teacher's patch features the pairs read
(``pair_tensors``).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import torch

from zeroseg3d.geometry.projection import Pairing
from zeroseg3d.utils.atomic import atomic_write_bytes


def _checksum(tensors: dict[str, torch.Tensor]) -> str:
    crc = 0
    for name in sorted(tensors):
        crc = zlib.crc32(name.encode(), crc)
        if tensors[name].numel():
            crc = zlib.crc32(tensors[name].contiguous().view(torch.uint8).numpy(), crc)
    return f"crc32:{crc:08x}"


class TeacherCache:
    def __init__(self, root: str | Path, key: str):
        self.root = Path(root)
        self.key = key

    def path(self, frame_id: str) -> Path:
        return self.root / "frames" / (frame_id.replace("/", "__") + ".safetensors")

    def load(self, frame_id: str, num_points: int | None = None) -> dict[str, torch.Tensor] | None:
        """The cached outputs of a frame, or None when missing, stale or corrupted."""
        from safetensors import safe_open

        path = self.path(frame_id)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = handle.metadata() or {}
                if meta.get("key") != self.key or meta.get("frame_id") != frame_id:
                    return None
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        except Exception:  # any parse failure means a damaged file: recompute it
            return None
        if meta.get("checksum") != _checksum(tensors):
            return None
        if num_points is not None and tensors.get("point_label", torch.empty(0)).shape[0] != num_points:
            return None
        return tensors

    def save(self, frame_id: str, tensors: dict[str, torch.Tensor]) -> Path:
        from safetensors.torch import save

        meta = {"key": self.key, "frame_id": frame_id, "checksum": _checksum(tensors)}
        path = self.path(frame_id)
        atomic_write_bytes(path, save({k: v.contiguous() for k, v in tensors.items()}, metadata=meta))
        return path


def point_tensors(num_points: int, view: np.ndarray, probs: np.ndarray) -> dict[str, torch.Tensor]:
    """The per-point entries of a cached frame from the class probabilities ``probs`` (M, C)
    of the points ``view`` (M,): view_index, view_probs, and the argmax point_label (N,)
    (-1 where unseen) with its probability point_conf (N,)."""
    label = np.full(num_points, -1, np.int16)
    conf = np.zeros(num_points, np.float16)
    if len(view):
        label[view] = probs.argmax(1)
        conf[view] = probs.max(1)
    return {"point_label": torch.from_numpy(label), "point_conf": torch.from_numpy(conf),
            "view_index": torch.from_numpy(np.asarray(view, np.int32)),
            "view_probs": torch.from_numpy(np.asarray(probs, np.float16))}


def bilinear_cells(uv: np.ndarray, image_size: tuple[int, int], grid_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Where pixels ``uv`` (P, 2) of an image of ``image_size`` (W, H) read a grid of
    ``grid_hw`` (h, w) cells covering it: (P, 5) flat cell indices (the four cells of the pixel
    centre's bilinear interpolation as grid_sample takes them, align_corners=False and border
    padding, then the cell that contains the pixel) and (P, 4) float32 weights of the four."""
    h, w = grid_hw
    width, height = image_size
    x = (uv[:, 0].astype(np.float64) + 0.5) / width * w
    y = (uv[:, 1].astype(np.float64) + 0.5) / height * h
    cell = np.clip(np.floor(y).astype(np.int64), 0, h - 1) * w + np.clip(np.floor(x).astype(np.int64), 0, w - 1)
    x, y = np.clip(x - 0.5, 0, w - 1), np.clip(y - 0.5, 0, h - 1)
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = x - x0, y - y0
    cells = np.stack([y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1, cell], axis=1)
    weights = np.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], axis=1).astype(np.float32)
    return cells, weights


def pair_tensors(pairing: Pairing, cameras, grids: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """The per-pair entries of a cached frame: the point-pixel pairing the teacher read
    (pair_point (P,) int32, pair_camera (P,) uint8 (up to 256 cameras), pair_uv (P, 2) and pair_depth (P,) float32;
    ``cached_pairing``) and the cameras' (h, w, D) patch grids ``grids`` as far as the pairs
    read them: patch_grid (cameras, 2) int32 each grid's (h, w), patch_cell (K,) int32 the
    cells some pair reads (numbered over the grids one after another, ascending) and
    patch_table (K, D) fp16 their features (``patch_taps`` reads them). A third of a KITTI
    grid is sky and never read."""
    shapes = np.array([g.shape[:2] for g in grids], np.int64).reshape(-1, 2)
    dim = grids[0].shape[2] if grids else 0
    cells, tables, offset = [], [], 0
    for index, (camera, grid) in enumerate(zip(cameras, grids)):
        rows = pairing.cam_idx == index
        if rows.any():
            used = np.unique(bilinear_cells(pairing.uv[rows], camera.image_size, tuple(shapes[index]))[0])
            cells.append(used + offset)
            tables.append(grid.reshape(-1, dim)[torch.from_numpy(used)])
        offset += int(shapes[index].prod())
    return {"pair_point": torch.from_numpy(pairing.point_idx.astype(np.int32)),
            "pair_camera": torch.from_numpy(pairing.cam_idx.astype(np.uint8 if len(grids) <= 256 else np.int32)),
            "pair_uv": torch.from_numpy(np.asarray(pairing.uv, np.float32)),
            "pair_depth": torch.from_numpy(np.asarray(pairing.depth, np.float32)),
            "patch_grid": torch.from_numpy(shapes.astype(np.int32)),
            "patch_cell": torch.from_numpy(np.concatenate(cells) if cells else np.zeros(0, np.int64)).int(),
            "patch_table": (torch.cat(tables) if tables else torch.zeros(0, dim)).half().contiguous()}


def cached_pairing(outputs: dict[str, torch.Tensor]) -> Pairing:
    """The pairing a cached frame's teacher read (``pair_tensors``): the one
    geometry.projection.pair_points gives for the frame and the cache key's pairing settings."""
    return Pairing(outputs["pair_point"].numpy().astype(np.int64), outputs["pair_camera"].numpy().astype(np.int64),
                   outputs["pair_uv"].numpy(), outputs["pair_depth"].numpy())


def patch_taps(outputs: dict[str, torch.Tensor], pairing: Pairing, cameras):
    """Where each pair of ``pairing`` (a cached frame's, ``cached_pairing``) reads the
    teacher's patches: (taps (P, 4) int64 rows of the table, their bilinear weights (P, 4)
    float32 (the pixel centre's grid_sample of the camera's grid, border padding), the row of
    the patch that contains the pixel (P,) int64, the table (K, D) fp16). The training step
    interpolates the P pair features from the table on its device: shipping them instead
    would cost D values per pair."""
    shapes = outputs["patch_grid"].numpy().astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(shapes.prod(1))])
    row_of_cell = np.full(int(starts[-1]), -1, np.int64)
    row_of_cell[outputs["patch_cell"].numpy()] = np.arange(len(outputs["patch_cell"]))
    taps, weights = np.zeros((len(pairing), 4), np.int64), np.zeros((len(pairing), 4), np.float32)
    patch = np.zeros(len(pairing), np.int64)
    for index, camera in enumerate(cameras):
        rows = np.flatnonzero(pairing.cam_idx == index)
        if len(rows) == 0:
            continue
        cells, weights[rows] = bilinear_cells(pairing.uv[rows], camera.image_size, tuple(shapes[index]))
        found = row_of_cell[cells + starts[index]]
        taps[rows], patch[rows] = found[:, :4], found[:, 4]
    if (taps < 0).any() or (patch < 0).any():
        raise ValueError("the cached patch table lacks cells the pairs read")
    return taps, weights, patch, outputs["patch_table"].numpy()


def point_labels(outputs: dict[str, torch.Tensor], among: np.ndarray | None = None,
                 min_mass: float = 0.0, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(N,) labels (-1: none) and confidences of a cached frame's points. With ``among`` (class
    indices), the most probable of those classes, its probability renormalised over them,
    for points whose probability mass on them is at least ``min_mass``: where the 3D labels
    say a point is none of the other classes, the teacher only has to tell these apart.
    ``weights`` (one per class of ``among``) multiply the probabilities first (``class_prior``)."""
    label = outputs["point_label"].numpy().astype(np.int64)
    conf = outputs["point_conf"].float().numpy()
    if among is None:
        return label, conf
    among = np.asarray(among, np.int64)
    view = outputs["view_index"].numpy().astype(np.int64)
    probs = outputs["view_probs"].float().numpy()[:, among]
    keep = probs.sum(1) >= max(min_mass, 1e-6)
    if weights is not None:
        probs = probs * weights
    best = probs.argmax(1)
    label, conf = np.full_like(label, -1), np.zeros_like(conf)
    label[view[keep]] = among[best[keep]]
    conf[view[keep]] = probs[keep, best[keep]] / probs[keep].sum(1)
    return label, conf


def among_mass(outputs: dict[str, torch.Tensor], among: np.ndarray) -> np.ndarray:
    """(N,) the teacher's probability mass on the classes ``among`` at each point of a cached
    frame (0 where no camera sees it)."""
    mass = np.zeros(len(outputs["point_label"]), np.float32)
    view = outputs["view_index"].numpy().astype(np.int64)
    mass[view] = outputs["view_probs"].float().numpy()[:, np.asarray(among, np.int64)].sum(1)
    return mass


def class_prior(frames, cache: TeacherCache, among: np.ndarray, seen, min_mass: float = 0.0,
                max_frames: int = 200) -> np.ndarray:
    """(len(among),) the teacher's mean probability of each class of ``among`` (renormalised
    over them) on the points the 3D labels leave unlabelled (none of the ``seen`` classes) that
    a camera sees, over up to ``max_frames`` frames spread evenly over ``frames`` (each must be
    in ``cache``: DataError otherwise). The teacher
    favours some classes everywhere (on the world a truck's 0.65 against a traffic sign's
    0.02); dividing by a power of this prior gives the rare ones back their labels."""
    among = np.asarray(among, np.int64)
    total, count = np.zeros(len(among)), 0
    for index in np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).astype(int)):
        frame = frames[int(index)]
        outputs = cache.load(frames.frame_ids[int(index)], frame.num_points)
        if outputs is None:
            from zeroseg3d.errors import DataError

            raise DataError(cache.path(frame.frame_id), f"frame {frame.frame_id} is missing from the teacher "
                            "labels (or stale); run `zeroseg3d teacher` with the same config first")
        view = outputs["view_index"].numpy().astype(np.int64)
        probs = outputs["view_probs"].float().numpy()[:, among]
        mass = probs.sum(1)
        unlabelled = (~np.isin(frame.labels, list(seen)) if frame.labels is not None
                      else np.ones(frame.num_points, bool))[view]
        rows = unlabelled & (mass >= max(min_mass, 1e-6))
        total += (probs[rows] / mass[rows, None]).sum(0)
        count += int(rows.sum())
    return total / count if count else np.full(len(among), 1.0 / len(among))


def prior_weights(prior: np.ndarray, power: float) -> np.ndarray:
    """Class weights for ``point_labels``: the prior (``class_prior``) to the power -``power``."""
    return np.maximum(prior, 1e-6) ** -power
