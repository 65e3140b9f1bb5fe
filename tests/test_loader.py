"""The training loader (engine/data.make_loader): batches in the sampler's order whatever the
worker count, and workers whose numpy runs one thread each."""

import numpy as np
import torch

from zeroseg3d.datasets.frame import Frame
from zeroseg3d.datasets.pipeline import SampleBuilder
from zeroseg3d.engine.data import make_loader


class _Frames(torch.utils.data.Dataset):
    """Samples of random scans; each records the BLAS thread limit of the process that built it."""

    def __init__(self, count: int):
        self.count, self.builder = count, SampleBuilder(0.2)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int):
        from threadpoolctl import threadpool_info

        rng = np.random.default_rng(index)
        points = np.concatenate([rng.uniform(-10, 10, (300 + index, 3)), rng.uniform(0, 1, (300 + index, 1))], 1)
        sample = self.builder(Frame(f"f{index}", points.astype(np.float32), labels=np.full(300 + index, index)))
        threads = max((pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"), default=1)
        sample.point_extras["blas_threads"] = np.full(len(sample.points), threads)
        return sample


def test_batches_follow_the_sampler_whatever_the_worker_count():
    order = [[3, 1], [0], [4, 2]]
    alone = list(make_loader(_Frames(5), order, workers=0))
    parallel = list(make_loader(_Frames(5), order, workers=2))
    assert [b["frame_ids"] for b in parallel] == [[f"f{i}" for i in batch] for batch in order]
    for a, b in zip(alone, parallel):
        for key in ("points", "labels", "offsets", "voxel_coords", "point_to_voxel"):
            assert torch.equal(a[key], b[key]), key


def test_workers_run_numpy_on_one_thread():
    for batch in make_loader(_Frames(4), [[0, 1], [2, 3]], workers=2):
        assert batch["blas_threads"].max().item() == 1
