"""Exact invariants of the dense read-outs, on tiny random open_clip models."""

import numpy as np
import pytest
import torch

from clip_fixtures import TINY_RN, TINY_VIT, TINY_VIT_TOK, write_model_config
from zeroseg3d.teacher.config import TeacherConfig
from zeroseg3d.teacher.dense import DenseCLIP, cosine_logits, prompt_denoise, sample_grid
from zeroseg3d.teacher.loading import load_clip


def dense(tmp_path, name, config, **settings):
    path = write_model_config(tmp_path, name, config)
    cfg = TeacherConfig(model_config=str(path), random_init=True, **settings)
    torch.manual_seed(0)
    loaded = load_clip(cfg)
    return DenseCLIP(loaded, cfg), loaded


def images(height, width, n=2, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, height, width, 3), dtype=np.uint8)


def test_tokens_readout_averages_to_the_pooled_embedding(tmp_path):
    """avg pooling: the mean of the per-patch read-out is the model's image embedding."""
    model, loaded = dense(tmp_path, "zs3d-tiny-avg", TINY_VIT, readout="tokens", short_side=32)
    batch = images(32, 32)
    grid = model.features(batch)
    assert grid.shape == (2, 32, 4, 4)
    pooled = loaded.model.encode_image(model.prepare(batch, (32, 32)))
    torch.testing.assert_close(grid.mean(dim=(2, 3)), pooled, rtol=1e-4, atol=1e-5)


def test_value_readout_is_the_last_block_with_self_only_attention(tmp_path):
    """MaskCLIP's value path equals the open_clip block run with attention restricted to
    each token itself (a diagonal mask), then ln_post and proj."""
    model, loaded = dense(tmp_path, "zs3d-tiny-tok", TINY_VIT_TOK, readout="value", short_side=32)
    batch = images(32, 32)
    grid = model.features(batch)
    visual = loaded.model.visual
    x = model.prepare(batch, (32, 32))
    h = visual._embeds(x)
    blocks = visual.transformer.resblocks
    for block in blocks[:-1]:
        h = block(h)
    mask = torch.full((h.shape[1], h.shape[1]), float("-inf"))
    mask.fill_diagonal_(0.0)
    h = blocks[-1](h, attn_mask=mask)
    expected = (visual.ln_post(h[:, 1:]) @ visual.proj).transpose(1, 2).reshape(2, 32, 4, 4)
    torch.testing.assert_close(grid, expected, rtol=1e-4, atol=1e-5)


def test_resnet_value_path_on_one_cell_is_the_attention_pool(tmp_path):
    """With one spatial cell and no positional embedding, every token of the attention pool
    holds the same vector, so the pool's output is c_proj(v_proj(x)): the dense value path."""
    model, loaded = dense(tmp_path, "zs3d-tiny-rn", TINY_RN, readout="value", short_side=32)
    loaded.model.visual.attnpool.positional_embedding.data.zero_()
    batch = images(32, 32)
    grid = model.features(batch)
    assert grid.shape == (2, 32, 1, 1)
    pooled = loaded.model.encode_image(model.prepare(batch, (32, 32)))
    torch.testing.assert_close(grid[:, :, 0, 0], pooled, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("readout", ["tokens", "value"])
def test_sliding_windows_reproduce_the_single_pass_on_one_window(tmp_path, readout):
    config = TINY_VIT if readout == "tokens" else TINY_VIT_TOK
    single, _ = dense(tmp_path, f"zs3d-sw-{readout}", config, readout=readout, short_side=32)
    slide, _ = dense(tmp_path, f"zs3d-sw-{readout}", config, readout=readout, short_side=32, sliding=True)
    slide.loaded.model.load_state_dict(single.loaded.model.state_dict())
    batch = images(32, 32)
    torch.testing.assert_close(slide.features(batch), single.features(batch))


def test_window_readout_scores_window_centres(tmp_path):
    model, loaded = dense(tmp_path, "zs3d-win", TINY_VIT_TOK, readout="window", short_side=32,
                          window_stride=8)
    batch = images(32, 64, n=1)
    grid = model.features(batch)
    assert grid.shape == (1, 32, 4, 8)
    x = model.prepare(batch, (32, 64))
    # window starting at column 16 is centred on cells 3-4 ((16 + 16) / 8 = 4 -> cell 3 with offset)
    expected = loaded.model.encode_image(x[:, :, :, 16:48])[0]
    torch.testing.assert_close(grid[0, :, 0, (16 // 8) + 1], expected, rtol=1e-4, atol=1e-5)
    # columns beyond the last window centre repeat it
    torch.testing.assert_close(grid[0, :, 0, -1], loaded.model.encode_image(x[:, :, :, 32:64])[0],
                               rtol=1e-4, atol=1e-5)


def test_any_image_size_and_multi_scale(tmp_path):
    model, _ = dense(tmp_path, "zs3d-any", TINY_VIT, readout="tokens", short_side=32, scales=[1.0, 1.5])
    grid = model.features(images(376, 1241, n=1))  # KITTI's aspect ratio
    assert grid.shape[:2] == (1, 32) and grid.shape[2] == 4 and 12 <= grid.shape[3] <= 14
    assert torch.isfinite(grid).all()


def test_logits_sampling_and_prompt_denoising():
    grid = torch.zeros(1, 2, 2, 3)
    grid[0, 0, :, :2] = 1.0   # left two columns point at class 0
    grid[0, 1, :, 2] = 1.0    # the right column at class 1
    text = torch.eye(2)
    logits = cosine_logits(grid, text, scale=10.0)
    assert logits[0, :, 0, 0].tolist() == [10.0, 0.0]
    # an image of 30 x 20 pixels: cell width 10 px; pixel (25, 5) lies in the right column
    labels = sample_grid(logits[0], torch.tensor([[25.0, 5.0], [4.0, 15.0]]), (30, 20), mode="nearest").argmax(1)
    assert labels.tolist() == [1, 0]
    # bilinear sampling at a cell centre returns that cell's value exactly
    centre = sample_grid(grid[0], torch.tensor([[14.5, 4.5]]), (30, 20))
    torch.testing.assert_close(centre, torch.tensor([[1.0, 0.0]]))
    weak = torch.tensor([[[[5.0]], [[4.9]], [[-5.0]]]])  # class 2 is never confident
    cleaned = prompt_denoise(weak, threshold=0.2)
    assert torch.isinf(cleaned[0, 2]).all() and torch.isfinite(cleaned[0, :2]).all()
