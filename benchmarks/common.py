"""Shared helpers of the benchmarks: the real sample scan, device description, result files."""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ZEROSEG3D_SHARED", REPO.parent / "shared"))
KITTI = SHARED / "data" / "semantickitti"
RESULTS = REPO / "benchmarks" / "results"


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_description() -> dict:
    """The machine a result was measured on: the CPU model and whether it multiplies bfloat16 in
    hardware (zeroseg3d's CPU bfloat16 paths run only there by default), threads, torch, the GPU."""
    import torch

    from zeroseg3d.utils.device import native_bf16

    info = {"cpu": cpu_model(), "cpu_bf16_units": native_bf16(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_runs(fn, repeat: int = 3, warmup: int = 1, sync=None) -> list[float]:
    """Seconds of each of ``repeat`` runs of ``fn()`` after ``warmup`` runs; ``sync`` (e.g.
    torch.cuda.synchronize) is called before and after each timed run, so that asynchronous
    device work is counted where it was launched."""
    sync = sync or (lambda: None)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def timed(fn, repeat: int = 3, warmup: int = 1) -> float:
    """Median seconds of ``fn()`` over ``repeat`` runs after ``warmup`` runs."""
    times = sorted(timed_runs(fn, repeat, warmup))
    return times[len(times) // 2]


def kitti_batch(voxel: float, batch_size: int, device: str) -> dict:
    """A collated batch of ``batch_size`` samples cycling over the real SemanticKITTI frames,
    voxelized at ``voxel`` metres, on ``device``."""
    from zeroseg3d.datasets.pipeline import SampleBuilder, collate
    from zeroseg3d.datasets.semantickitti import SemanticKITTI
    from zeroseg3d.utils.device import to_device

    frames = SemanticKITTI.from_root(KITTI, sequences=["00"])
    builder = SampleBuilder(voxel)
    return to_device(collate([builder(frames[i % len(frames)]) for i in range(batch_size)]), device)


def random_student(backbone: str, device: str = "cpu"):
    """(student with random weights, seed 0, on ``device``; 19 unit text embeddings of 512 dims)."""
    import torch
    import torch.nn.functional as F

    from zeroseg3d.models.config import ModelConfig
    from zeroseg3d.models.segmentor import create_student

    torch.manual_seed(0)
    model = create_student(ModelConfig(backbone=backbone), 512, device)
    return model, F.normalize(torch.randn(19, 512), dim=-1).to(device)


def kitti_training_set(voxel: float, cache_dir: str | Path, grid: tuple[int, int] = (24, 78), dim: int = 512):
    """The real SemanticKITTI frames as training samples (engine/data.SegmentationSet with the
    default loss settings: unseen classes' labels hidden, augmentation, pseudo labels among the
    unseen classes voted over objects; augmentation drawn, not applied, and no voxels, as
    training leaves both to the step's device), with a teacher cache in ``cache_dir`` of the shapes
    ViT-B-16 writes at the native 1241x376 size (a 24x78 grid of 512-d features per camera)
    and seeded random values: what the loader does per sample does not depend on them."""
    import numpy as np
    import torch

    from zeroseg3d.config import Config
    from zeroseg3d.datasets.pipeline import SampleBuilder
    from zeroseg3d.datasets.semantickitti import SemanticKITTI
    from zeroseg3d.engine.builder import class_split
    from zeroseg3d.engine.data import SegmentationSet
    from zeroseg3d.geometry.config import AugmentConfig, PairingConfig
    from zeroseg3d.geometry.projection import pair_points
    from zeroseg3d.teacher.cache import TeacherCache, pair_tensors, point_tensors

    config = Config()
    frames = SemanticKITTI.from_root(KITTI, sequences=["00"])
    split = class_split(config, frames.vocabulary)
    cache = TeacherCache(cache_dir, "benchmark")
    rng = np.random.default_rng(0)
    for index in range(len(frames)):
        frame = frames[index]
        pairing = pair_points(frame.xyz, frame.cameras, PairingConfig())
        view = np.unique(pairing.point_idx)
        probs = rng.dirichlet(np.full(frames.vocabulary.num_classes, 0.3), len(view)).astype(np.float32)
        grids = [torch.from_numpy(rng.standard_normal((*grid, dim)).astype(np.float16)) for _ in frame.cameras]
        tensors = pair_tensors(pairing, frame.cameras, grids)
        tensors.update(point_tensors(frame.num_points, view, probs))
        cache.save(frame.frame_id, tensors)
    loss = config.loss
    return SegmentationSet(frames, SampleBuilder(voxel, PairingConfig(), AugmentConfig(), on_device=True), split, cache,
                           training=True, pseudo_among=np.array(split.unseen), pseudo_min_mass=loss.pseudo_min_mass,
                           object_radius=loss.pseudo_object_radius, object_ground=loss.pseudo_object_ground)


class BuiltFrames:
    """``frames`` as ``builder`` makes training samples of them (their geometry only)."""

    def __init__(self, frames, builder):
        self.frames, self.builder = frames, builder

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int):
        return self.builder(self.frames[index])


class Cycled:
    """``length`` items cycling over ``dataset``."""

    def __init__(self, dataset, length: int):
        self.dataset, self.length = dataset, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        return self.dataset[index % len(self.dataset)]


def loader_batches_per_s(samples, batch_size: int, workers: int, device: str = "cpu") -> float:
    """Steady-state batches per second of the training loader (engine/data.make_loader) over
    the dataset ``samples``, cycled: the batches the workers prefetched while starting are
    taken before the clock starts, so that only what they build while timed is counted."""
    from zeroseg3d.engine.data import make_loader

    skip = max(1, 4 * workers)   # make_loader's prefetch depth
    timed_batches = max(12, 4 * workers)
    length = batch_size * (skip + timed_batches)
    batches = [list(range(i, i + batch_size)) for i in range(0, length, batch_size)]
    iterator = iter(make_loader(Cycled(samples, length), batches, workers, device))
    for _ in range(skip):
        next(iterator)
    start = time.perf_counter()
    count = sum(1 for _ in iterator)
    return count / (time.perf_counter() - start)


def merge_rounds(rounds: list[dict], times: dict[str, str | None], peaks: tuple[str, ...]) -> dict:
    """One row from the processes of one setting, run in alternating rounds: each key of
    ``times`` the median over the rounds (pooling the lists of timed runs that ``times[key]``
    names; None: one value per round, kept as KEY_rounds), each key of ``peaks`` the largest."""
    import statistics

    row = dict(rounds[0])
    for key, runs in times.items():
        if runs is not None:
            values = row[runs] = [t for r in rounds for t in r[runs]]
        else:
            values = row[f"{key}_rounds"] = [r[key] for r in rounds]
        row[key] = statistics.median(values)
    for key in peaks:
        if key in row:
            row[key] = max(r[key] for r in rounds)
    return row


def with_interval(value: float, bounds) -> str:
    """A figure and its interval as the result tables print them: 12.3 [10.1, 14.0]."""
    return f"{value:.1f} [{bounds[0]:.1f}, {bounds[1]:.1f}]"


def write_result(name: str, result: dict, path: Path | None = None) -> Path:
    """``result`` with the benchmark's name, the device and the date, to ``path``
    (default benchmarks/results/NAME.json)."""
    from zeroseg3d.utils.atomic import atomic_write_text

    result = {"benchmark": name, "device": device_description(), "date": time.strftime("%Y-%m-%d %H:%M"), **result}
    path = path or RESULTS / f"{name}.json"
    atomic_write_text(path, json.dumps(result, indent=2))
    return path


def named_checkpoints(items: list[str]) -> dict[str, list[str]]:
    """NAME=PATH arguments -> {name: [paths]} (a name given once per training seed)."""
    named: dict[str, list[str]] = {}
    for item in items:
        name, _, path = item.partition("=")
        if not name or not path:
            raise SystemExit(f"{item}: expected NAME=PATH")
        named.setdefault(name, []).append(path)
    return named


def measure_named(items: list[str], measure) -> list[tuple[str, list[str], list]]:
    """NAME=PATH arguments measured: (name, its paths, ``measure(path)`` of each) per name."""
    return [(name, paths, [measure(path) for path in paths]) for name, paths in named_checkpoints(items).items()]


def target_line(label: str, value: float, target: float, unit: str, lower_is_better: bool = True) -> str:
    met = value <= target if lower_is_better else value >= target
    if met:
        return f"{label}: {value:.3g} {unit} (target {'<=' if lower_is_better else '>='} {target:g}: met)"
    ratio = value / target if lower_is_better else target / value
    return f"{label}: {value:.3g} {unit} (target {'<=' if lower_is_better else '>='} {target:g}: MISSED by {ratio:.2f}x)"


def train_student(demo: str, folder: str, overrides: list[str], seed: int, threads: int, workers: int) -> dict:
    """One student on the demo's world with these config overrides (run in a worker
    process): its validation metrics, with the seconds and steps it took."""
    import torch

    from zeroseg3d.engine.demo import FULL, world_config
    from zeroseg3d.engine.train import run_training

    torch.set_num_threads(threads)
    config = world_config(Path(demo), FULL, seed, [*overrides, f"train.threads={threads}",
                                                   f"train.num_workers={workers}"])
    start = time.time()
    result = run_training(config, Path(demo) / folder, progress=False)
    return {**result["metrics"], "seed": seed, "seconds": round(time.time() - start, 1), "steps": result["steps"]}


def train_students(demo: Path, jobs: list[tuple[str, list[str], int]], folder: str, parallel: int = 1,
                   threads: int = 2, workers: int = 0):
    """Train (name, overrides, seed) jobs, ``parallel`` at once (on 2 cores, two runs of one
    thread each get through 1.4x the steps of one run of two threads); yields (name, seed,
    metrics) as each ends, metrics None for a run that failed (its error is printed)."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    with ProcessPoolExecutor(parallel, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(train_student, str(demo), f"{folder}/{name}_seed{seed}", overrides, seed, threads,
                               workers): (name, seed) for name, overrides, seed in jobs}
        for future in as_completed(futures):
            name, seed = futures[future]
            try:
                yield name, seed, future.result()
            except Exception as error:  # one failed run is reported, the others go on
                print(f"{name} seed {seed}: FAILED {type(error).__name__}: {error}", flush=True)
                yield name, seed, None
