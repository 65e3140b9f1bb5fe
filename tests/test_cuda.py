"""The training step's own work on a GPU: a batch finished there (augmented and voxelized,
datasets.pipeline.finish_batch) is the batch the CPU finishes, the jitter drawn there is the
configured clipped normal, and a step of the student runs on it. Skipped without CUDA;
benchmarks/gpu_session.sh runs them on a lent GPU."""

import numpy as np
import pytest
import torch

from zeroseg3d.datasets.frame import Frame
from zeroseg3d.datasets.pipeline import SampleBuilder, collate, finish_batch, widen
from zeroseg3d.geometry.augment import Augmentation, apply_augmentations
from zeroseg3d.geometry.config import AugmentConfig
from zeroseg3d.geometry.voxelize import voxelize_batch
from zeroseg3d.utils.device import to_device

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def _frames(rng, sizes=(4000, 1, 9000)):
    frames = []
    for n in sizes:
        xyz = rng.normal(0, 15, (n, 3))
        points = np.concatenate([xyz, rng.uniform(0, 1, (n, 1))], axis=1).astype(np.float32)
        frames.append(Frame(f"f{n}", points, [], labels=rng.integers(-1, 5, n)))
    return frames


def _batch(frames, config, voxel=0.1):
    augment = [config] * (len(frames) - 1) + [None]   # the last scan left as read
    return collate([SampleBuilder(voxel, augment=a, on_device=True)(f, np.random.default_rng(i))
                    for i, (f, a) in enumerate(zip(frames, augment))], compact=True)


def test_a_batch_finished_on_the_gpu_is_the_one_the_cpu_finishes(rng):
    # rotation, scale and flips (the jitter's CUDA draw differs from the CPU's: next test)
    config = AugmentConfig(rotate_z_deg=180.0, scale_min=0.9, scale_max=1.1, jitter_sigma=0.0)
    batch = _batch(_frames(rng), config)
    on_cpu = finish_batch(widen(batch))
    on_gpu = finish_batch(widen(to_device(batch, "cuda")))
    assert on_gpu["points"].is_cuda and on_gpu["voxel_coords"].is_cuda
    gpu_points = on_gpu["points"].cpu()
    # float64 affine on both; the GPU may fuse multiply-adds, so the last float32 bit may differ
    torch.testing.assert_close(gpu_points, on_cpu["points"], rtol=0, atol=1e-5)
    assert (gpu_points == on_cpu["points"]).all(1).float().mean() > 0.999
    # the same points voxelize to the same voxels, int64 keys and dtypes included
    coords, point_to_voxel = voxelize_batch(on_cpu["points"][:, :3].cuda(), on_cpu["offsets"].cuda(), 0.1)
    assert torch.equal(coords.cpu(), on_cpu["voxel_coords"]) and coords.dtype == torch.int32
    assert torch.equal(point_to_voxel.cpu(), on_cpu["point_to_voxel"]) and point_to_voxel.dtype == torch.int64
    for key in ("labels", "offsets", "pair_point"):
        assert torch.equal(on_gpu[key].cpu(), on_cpu[key]), key


def test_the_jitter_drawn_on_the_gpu_is_the_configured_clipped_normal():
    points = torch.zeros(400_000, 4, device="cuda")
    draw = Augmentation(np.eye(4), jitter_seed=7, jitter_sigma=0.01, jitter_clip=0.02)
    offsets = torch.tensor([0, len(points)], device="cuda")
    apply_augmentations(points, offsets, [draw])
    again = torch.zeros_like(points)
    apply_augmentations(again, offsets, [draw])
    assert torch.equal(points, again)   # the draw's seed decides it
    noise = points[:, :3].cpu().numpy().ravel()
    assert np.abs(noise).max() <= 0.02 + 1e-6 and (points[:, 3] == 0).all()
    assert abs(noise.mean()) < 2e-4
    assert 0.040 < np.mean(np.abs(noise) > 0.02 - 1e-6) < 0.051   # 4.55% beyond two sigmas
    inside = noise[np.abs(noise) < 0.02 - 1e-6]
    assert abs(inside.std() - 0.00880) < 2e-4   # a normal truncated at two sigmas: 0.880 sigma


def test_a_training_step_runs_on_a_batch_finished_on_the_gpu(rng):
    pytest.importorskip("spconv")
    import torch.nn.functional as F

    from zeroseg3d.models.config import ModelConfig
    from zeroseg3d.models.segmentor import create_student
    from zeroseg3d.utils.device import autocast, grad_scaler

    torch.manual_seed(0)
    model = create_student(ModelConfig(backbone="small"), 64, "cuda")
    text = F.normalize(torch.randn(5, 64, device="cuda"), dim=-1)
    config = AugmentConfig(rotate_z_deg=180.0, scale_min=0.9, scale_max=1.1, jitter_sigma=0.01)
    batch = finish_batch(widen(to_device(_batch(_frames(rng, (20_000, 30_000)), config), "cuda")))
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    scaler = grad_scaler("cuda", "auto")
    labels = batch["labels"].clamp_min(0)
    losses = []
    for _ in range(3):
        with autocast("cuda", "auto"):
            logits = model(batch, text)["logits"]
            loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        losses.append(float(loss.detach()))
    assert logits.shape == (len(batch["points"]), 5) and all(np.isfinite(losses))
    assert all(p.grad is None or p.grad.is_cuda for p in model.parameters())
    assert losses[-1] < losses[0]   # three steps on one batch learn it a little
