"""Write synthetic sequences in SemanticKITTI's own layout.

    OUT/sequences/XX/velodyne/NNNNNN.bin     float32 (N, 4) x, y, z, remission
    OUT/sequences/XX/labels/NNNNNN.label     uint32: raw semantic id | instance id << 16
    OUT/sequences/XX/image_2/NNNNNN.png      RGB, 640x192
    OUT/sequences/XX/image_2_labels/NNNNNN.png  uint16 raw semantic id per pixel (0 = sky);
                                             2D ground truth, which SemanticKITTI lacks
    OUT/sequences/XX/image_2_instances/NNNNNN.png  uint16 instance id per pixel (0 = none)
    OUT/sequences/XX/calib.txt               P0..P3, Tr, and S2 (image size of camera 2)
    OUT/sequences/XX/poses.txt, times.txt
    OUT/world.json                           how the world was made

Sequence XX is one street drawn from (seed, XX); frame NNNNNN is the ego a little further
along it. Everything is deterministic for a seed.
"""

from __future__ import annotations

import io
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zeroseg3d.utils.atomic import atomic_write_bytes, atomic_write_text
from zeroseg3d.world import render
from zeroseg3d.world.scene import Scene, sample_scene

GENERATOR_VERSION = 1


@dataclass(frozen=True)
class Drive:
    start_x: float
    step: float          # metres per frame (10 Hz)
    yaw_amplitude: float


IMAGE_SET = "images2d"  # camera-only images for the teacher, beside sequences/
HELDOUT_SET = "images2d_heldout"  # camera-only images of other streets, to measure the teacher
HELDOUT_FIRST = 100_000  # image numbers of the held-out set: streets the training set never shows


def scene_for(seed: int, sequence: int, frames: int) -> tuple[Scene, Drive]:
    rng = np.random.default_rng(np.random.SeedSequence([seed, sequence, 0]))
    drive = Drive(start_x=float(rng.uniform(-5, 5)), step=float(rng.uniform(0.8, 1.5)),
                  yaw_amplitude=float(np.deg2rad(rng.uniform(0.0, 1.5))))
    end_x = drive.start_x + drive.step * frames
    scene = sample_scene(rng, drive.start_x - 70, end_x + 130, (drive.start_x, end_x))
    return scene, drive


def lidar_pose(scene: Scene, drive: Drive, frame: int) -> np.ndarray:
    """(4, 4) LiDAR -> world of a frame: along the ego lane with a gentle yaw wiggle."""
    x = drive.start_x + drive.step * frame
    yaw = drive.yaw_amplitude * np.sin(frame / 7.0)
    pose = np.eye(4)
    c, s = np.cos(yaw), np.sin(yaw)
    pose[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    pose[:3, 3] = [x, scene.ego_y + 0.1 * np.sin(frame / 5.0), render.LIDAR_HEIGHT]
    return pose


def calib_text() -> str:
    def row(matrix):
        return " ".join(f"{v:.12e}" for v in np.asarray(matrix)[:3].ravel())

    K0 = np.concatenate([render.K_CAMERA, np.zeros((3, 1))], axis=1)
    p2 = render.p2_matrix()
    width, height = render.IMAGE_SIZE
    return (f"P0: {row(K0)}\nP1: {row(K0)}\nP2: {row(p2)}\nP3: {row(p2)}\n"
            f"Tr: {row(render.tr_cam0_from_lidar())}\nS2: {width} {height}\n")


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def render_frame(seed: int, sequence: int, frame: int, frames: int) -> dict:
    """Everything of one frame, as arrays (run in worker processes)."""
    scene, drive = scene_for(seed, sequence, frames)
    rng = np.random.default_rng(np.random.SeedSequence([seed, sequence, 1 + frame]))
    pose = lidar_pose(scene, drive, frame)
    points, labels, instances, primitives = render.scan_lidar(scene, pose, rng)
    cam_to_world = pose @ np.linalg.inv(render.t_cam2_from_lidar())
    image, pixel_labels, pixel_instances = render.render_camera(scene, cam_to_world, rng)
    return {"points": points, "labels": labels, "instances": instances, "primitives": primitives,
            "image": image, "pixel_labels": pixel_labels, "pixel_instances": pixel_instances, "pose": pose}


def write_frame(folder: Path, frame: int, data: dict) -> None:
    name = f"{frame:06d}"
    atomic_write_bytes(folder / "velodyne" / f"{name}.bin", data["points"].astype(np.float32).tobytes())
    packed = data["labels"].astype(np.uint32) | (data["instances"].astype(np.uint32) << 16)
    atomic_write_bytes(folder / "labels" / f"{name}.label", packed.tobytes())
    atomic_write_bytes(folder / "image_2" / f"{name}.png", _png(data["image"]))
    atomic_write_bytes(folder / "image_2_labels" / f"{name}.png", _png(data["pixel_labels"].astype(np.uint16)))
    atomic_write_bytes(folder / "image_2_instances" / f"{name}.png", _png(data["pixel_instances"]))


def _task(args):
    seed, sequence, frame, frames, folder = args
    data = render_frame(seed, sequence, frame, frames)
    write_frame(Path(folder), frame, data)
    return sequence, frame, data["pose"], {int(k): int(v) for k, v in zip(*np.unique(data["labels"], return_counts=True))}


def generate_world(out: str | Path, sequences: int, frames: int, seed: int = 0, start: int = 0,
                   workers: int = 1, progress: bool = True) -> dict:
    """Generate sequences start..start+sequences-1 of ``frames`` frames each under ``out``."""
    from tqdm import tqdm

    if sequences < 1 or frames < 1:
        raise ValueError("sequences and frames must be at least 1")
    out = Path(out)
    tasks = []
    for sequence in range(start, start + sequences):
        folder = out / "sequences" / f"{sequence:02d}"
        for sub in ("velodyne", "labels", "image_2", "image_2_labels", "image_2_instances"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "calib.txt", calib_text())
        tasks += [(seed, sequence, frame, frames, str(folder)) for frame in range(frames)]
    poses: dict[int, dict[int, np.ndarray]] = {}
    histogram: dict[int, int] = {}
    bar = tqdm(total=len(tasks), desc="world", unit="frame", disable=not progress)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = pool.map(_task, tasks, chunksize=1)
            for result in results:
                _collect(result, poses, histogram)
                bar.update()
    else:
        for task in tasks:
            _collect(_task(task), poses, histogram)
            bar.update()
    bar.close()
    for sequence, by_frame in poses.items():
        folder = out / "sequences" / f"{sequence:02d}"
        _write_poses(folder, [by_frame[f] for f in sorted(by_frame)])
    manifest = {"generator": "zeroseg3d.world", "version": GENERATOR_VERSION, "seed": seed,
                "sequences": [f"{s:02d}" for s in range(start, start + sequences)],
                "frames_per_sequence": frames, "image_size": list(render.IMAGE_SIZE),
                "raw_label_histogram": {str(k): v for k, v in sorted(histogram.items())}}
    _merge_manifest(out / "world.json", manifest)
    return manifest


def _image_task(args):
    seed, index, folder = args
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1_000_000 + index]))
    # a fresh street per four images, each seen from a random place on it
    scene_rng = np.random.default_rng(np.random.SeedSequence([seed, 2_000_000 + index // 4]))
    scene = sample_scene(scene_rng, -40.0, 160.0, (0.0, 0.0))
    pose = np.eye(4)
    yaw = rng.uniform(-0.3, 0.3) + (np.pi if rng.random() < 0.3 else 0.0)
    c, s = np.cos(yaw), np.sin(yaw)
    pose[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    pose[:3, 3] = [rng.uniform(0, 60), rng.uniform(-scene.layout.road_half + 1, scene.layout.road_half - 1),
                   render.LIDAR_HEIGHT + rng.uniform(-0.3, 0.3)]
    cam_to_world = pose @ np.linalg.inv(render.t_cam2_from_lidar())
    image, labels, instances = render.render_camera(scene, cam_to_world, rng)
    name = f"{index:06d}.png"
    atomic_write_bytes(Path(folder) / "image_2" / name, _png(image))
    atomic_write_bytes(Path(folder) / "image_2_labels" / name, _png(labels.astype(np.uint16)))
    atomic_write_bytes(Path(folder) / "image_2_instances" / name, _png(instances))
    return index


def render_image_set(out: str | Path, count: int, seed: int = 0, workers: int = 1, progress: bool = True,
                     first: int = 0) -> Path:
    """Camera-only images of streets that are not in any sequence, from random viewpoints:
    the 2D data the demo teacher learns from, as CLIP learnt from images unrelated to any
    3D dataset. Layout: OUT/{image_2, image_2_labels, image_2_instances}/NNNNNN.png.
    Images are numbered from ``first``; sets with disjoint numbers show different streets
    (a held-out set for the teacher's quality)."""
    from tqdm import tqdm

    out = Path(out)
    for sub in ("image_2", "image_2_labels", "image_2_instances"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    tasks = [(seed, i, str(out)) for i in range(first, first + count)
             if not (out / "image_2_instances" / f"{i:06d}.png").is_file()]
    bar = tqdm(total=len(tasks), desc="images", unit="image", disable=not progress)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for _ in pool.map(_image_task, tasks, chunksize=2):
                bar.update()
    else:
        for task in tasks:
            _image_task(task)
            bar.update()
    bar.close()
    return out


def _collect(result, poses, histogram):
    sequence, frame, pose, counts = result
    poses.setdefault(sequence, {})[frame] = pose
    for label, count in counts.items():
        histogram[label] = histogram.get(label, 0) + count


def _write_poses(folder: Path, lidar_poses: list[np.ndarray]) -> None:
    """poses.txt holds camera-0 poses relative to the first frame, as KITTI's does."""
    tr = render.tr_cam0_from_lidar()
    first_inv = np.linalg.inv(lidar_poses[0])
    lines, times = [], []
    for index, pose in enumerate(lidar_poses):
        cam_pose = tr @ first_inv @ pose @ np.linalg.inv(tr)
        lines.append(" ".join(f"{v:.12e}" for v in cam_pose[:3].ravel()))
        times.append(f"{index * 0.1:.6e}")
    atomic_write_text(folder / "poses.txt", "\n".join(lines) + "\n")
    atomic_write_text(folder / "times.txt", "\n".join(times) + "\n")


def _merge_manifest(path: Path, manifest: dict) -> None:
    """Several generate calls may fill one world (e.g. train and val sequences)."""
    if path.is_file():
        previous = json.loads(path.read_text())
        if previous.get("version") == manifest["version"]:
            manifest = {**manifest, "sequences": sorted(set(previous.get("sequences", [])) | set(manifest["sequences"])),
                        "parts": previous.get("parts", [previous.get("seed")]) + [manifest["seed"]]}
    atomic_write_text(path, json.dumps(manifest, indent=2))
