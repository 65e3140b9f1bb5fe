"""The training loader (engine/data.make_loader): batches in the sampler's order whatever the
worker count, and workers whose numpy runs one thread each; the teacher's patch rows that a
sample carries (teacher/cache.patch_taps) and their batching."""

import numpy as np
import torch

from zeroseg3d.datasets.frame import Frame
from zeroseg3d.datasets.pipeline import Sample, SampleBuilder, collate, widen
from zeroseg3d.engine.data import make_loader
from zeroseg3d.geometry.projection import Pairing
from zeroseg3d.teacher.cache import cached_pairing, pair_tensors, patch_taps
from zeroseg3d.teacher.dense import sample_grid


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


def test_loader_batches_travel_compact_and_widen_to_the_full_batch():
    samples = [_Frames(3)[i] for i in range(3)]
    for s in samples:   # teacher-like extras: a label per point, patch rows per pair
        s.point_extras["teacher_label"] = np.arange(len(s.points)) % 7 - 1
        s.pair_extras = {"pair_taps": np.arange(12).reshape(3, 4), "pair_patch": np.arange(3)}
        s.patch_features = np.zeros((12, 2), np.float16)
    full = collate(samples)
    (batch,) = make_loader(samples, [[0, 1, 2]], workers=0)
    assert {k for k, v in batch.items() if torch.is_tensor(v) and v.dtype == torch.int64} == {"offsets"}
    assert batch["labels"].dtype == torch.int32 and batch["voxel_coords"].dtype == torch.int32
    wide = widen(batch)
    assert set(wide) == set(full)
    for key, value in full.items():
        if torch.is_tensor(value):
            assert wide[key].dtype == value.dtype and torch.equal(wide[key], value), key
    assert wide["pair_taps"][3:, 0].tolist() == [12, 16, 20, 24, 28, 32]   # offset by each sample's table


def test_workers_run_numpy_on_one_thread():
    for batch in make_loader(_Frames(4), [[0, 1], [2, 3]], workers=2):
        assert batch["blas_threads"].max().item() == 1


class _Camera:
    def __init__(self, image_size):
        self.image_size = image_size


def test_patch_taps_interpolate_as_grid_sample_and_name_the_containing_patch():
    rng = np.random.default_rng(0)
    # the middle camera sees no point: its grid is numbered but none of its cells is kept
    cameras = [_Camera((120, 40)), _Camera((30, 30)), _Camera((64, 64))]
    grids = [torch.from_numpy(rng.standard_normal((4, 12, 8)).astype(np.float16)),
             torch.from_numpy(rng.standard_normal((3, 3, 8)).astype(np.float16)),
             torch.from_numpy(rng.standard_normal((8, 8, 8)).astype(np.float16))]
    # pixels anywhere in the images, their edges and corners included
    uv = np.concatenate([rng.uniform(-0.5, 119.49, (300, 2)) * [1, 40 / 120],
                         [[-0.5, -0.5], [119.49, 39.49], [0.0, 39.0], [60.0, 20.0]],
                         rng.uniform(-0.5, 31.49, (200, 2))]).astype(np.float32)
    cam = np.repeat([0, 2], [304, 200])
    pairing = Pairing(np.arange(504), cam, uv, rng.uniform(1, 50, 504).astype(np.float32))
    outputs = pair_tensors(pairing, cameras, grids)
    cached = cached_pairing(outputs)
    for name in ("point_idx", "cam_idx", "uv", "depth"):
        np.testing.assert_array_equal(getattr(cached, name), getattr(pairing, name))
    taps, weights, patch, table = patch_taps(outputs, cached, cameras)
    features = (table[taps].astype(np.float32) * weights[..., None]).sum(1)
    assert np.allclose(weights.sum(1), 1) and (weights >= 0).all()
    for c, (camera, grid) in enumerate(zip(cameras, grids)):
        rows = cam == c
        if not rows.any():
            continue
        expected = sample_grid(grid.permute(2, 0, 1).float(), torch.from_numpy(uv[rows]), camera.image_size)
        np.testing.assert_allclose(features[rows], expected.numpy(), atol=1e-5)
        # the patch whose cell holds the pixel
        h, w, _ = grid.shape
        width, height = camera.image_size
        cell = (np.clip(((uv[rows, 1] + 0.5) / height * h).astype(int), 0, h - 1) * w
                + np.clip(((uv[rows, 0] + 0.5) / width * w).astype(int), 0, w - 1))
        np.testing.assert_array_equal(table[patch[rows]], grid.reshape(-1, 8).numpy()[cell])
    # the table keeps each cell some pair reads once, the first camera's rows first; the
    # third camera's lower and right cells are never read (its pixels lie in its upper-left quarter)
    assert len(table) == len(np.unique(np.concatenate([taps.ravel(), patch])))
    assert patch[cam == 0].max() < patch[cam == 2].min()
    assert len(table) < 4 * 12 + 8 * 8


def test_collate_offsets_patch_rows_per_sample():
    def sample(name, rows, table):
        s = Sample(name, np.zeros((2, 4), np.float32), np.zeros(2, np.int64), Pairing.empty(),
                   np.zeros((1, 3), np.int32), np.zeros(2, np.int64), np.eye(4))
        s.pair_extras = {"pair_taps": np.array(rows)[:, None].repeat(4, 1), "pair_patch": np.array(rows),
                         "pair_tap_weights": np.full((len(rows), 4), 0.25, np.float32)}
        s.patch_features = table
        return s

    batch = collate([sample("a", [0, 1], np.zeros((2, 3), np.float16)), sample("b", [2, 0], np.ones((3, 3), np.float16))])
    assert batch["pair_patch"].tolist() == [0, 1, 4, 2]
    assert batch["pair_taps"][:, 0].tolist() == [0, 1, 4, 2]
    assert batch["patch_features"].shape == (5, 3)
    assert batch["patch_features"][batch["pair_patch"]].float().sum(1).tolist() == [0, 0, 3, 3]
