"""Dense CLIP image features: one D-dimensional vector per image patch.

Read-outs (TeacherConfig.readout):
- ``value``: MaskCLIP. ViT: the last block's attention is replaced by its value path for every
  token (value projection, output projection, optionally the block's residual and MLP), then
  the final norm and projection. ResNet: the attention pool's value and output projections
  applied as 1x1 convolutions. The right read-out for real CLIP.
- ``tokens``: the normal last-block output of every patch token through the final norm and
  projection; right for models trained with average pooling (the demo teacher).
- ``window``: sliding-window global classification; each window's pooled embedding is the
  feature of its centre cell. Works for any model.

Images of any size: resized so the short side is ``short_side`` (x scale), snapped to the
patch grid, and run in one pass with interpolated positional embeddings, or in overlapping
windows (``sliding``). The returned grid covers the resized image exactly, so a pixel (u, v)
of the original image of size (W, H) sits at normalised grid coordinates
((u + 0.5) / W * 2 - 1, (v + 0.5) / H * 2 - 1).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from zeroseg3d.errors import ConfigError
from zeroseg3d.utils.device import is_cuda


def interpolate_pos_embed(pos: torch.Tensor, old_grid: tuple[int, int], new_grid: tuple[int, int]) -> torch.Tensor:
    """(1 + h*w, C) -> (1 + H*W, C) by bicubic interpolation of the patch part."""
    if tuple(old_grid) == tuple(new_grid):
        return pos
    cls, patches = pos[:1], pos[1:]
    grid = patches.reshape(1, old_grid[0], old_grid[1], -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid.float(), size=new_grid, mode="bicubic", align_corners=False)
    return torch.cat([cls, grid.permute(0, 2, 3, 1).reshape(-1, pos.shape[1]).to(pos.dtype)])


class DenseCLIP:
    """Dense features of a frozen open_clip model's image tower."""

    def __init__(self, loaded, config, device: str = "cpu"):
        import open_clip

        self.loaded = loaded
        self.config = config
        self.device = device
        self.visual = loaded.model.visual
        self.is_vit = isinstance(self.visual, open_clip.transformer.VisionTransformer)
        self.is_resnet = isinstance(self.visual, open_clip.modified_resnet.ModifiedResNet)
        if config.readout not in ("value", "tokens", "window"):
            raise ConfigError(f"unknown teacher.readout {config.readout!r}; use value, tokens or window")
        if config.readout != "window" and not (self.is_vit or self.is_resnet):
            raise ConfigError(f"readout {config.readout!r} needs a ViT or ResNet image tower; "
                              "use teacher.readout=window")
        if self.is_vit and config.readout != "window":
            if self.visual.attn_pool is not None:
                raise ConfigError("attention-pooled ViTs have no per-patch read-out; use readout=window")
            block = self.visual.transformer.resblocks[-1]
            if not isinstance(block.attn, torch.nn.MultiheadAttention):
                raise ConfigError("the value read-out supports standard attention blocks only")
        if self.is_resnet and config.readout == "tokens":
            raise ConfigError("ResNet towers have no patch tokens; use readout=value or window")
        self.patch = self.visual.patch_size[0] if self.is_vit else 32
        self.window = config.window or loaded.image_size

    @property
    def stride(self) -> int:
        """Pixels of the resized image per grid cell."""
        if self.config.readout == "window":
            return self.config.window_stride or max(self.window // 4, 1)
        return self.patch

    # -- input --------------------------------------------------------------------------
    def resized_shape(self, height: int, width: int, scale: float = 1.0) -> tuple[int, int]:
        """Short side at ``short_side * scale``, both sides multiples of the grid stride and
        at least one window when windows are used."""
        factor = self.config.short_side * scale / min(height, width)
        unit = self.stride
        windowed = self.config.readout == "window" or self.config.sliding
        minimum = self.window if windowed else unit

        def snap(n: int) -> int:
            return max(minimum, int(round(n * factor / unit)) * unit)

        return snap(height), snap(width)

    def prepare(self, images: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> normalised (B, 3, h, w) float at ``shape``."""
        x = torch.as_tensor(images, device=self.device).permute(0, 3, 1, 2).float() / 255.0
        if tuple(x.shape[-2:]) != tuple(shape):
            x = F.interpolate(x, size=shape, mode="bilinear", align_corners=False, antialias=True)
        return self.loaded.normalize(x)

    # -- read-outs ----------------------------------------------------------------------
    def _vit_grid(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) -> (B, D, h/p, w/p) per-patch features of a ViT (value or tokens)."""
        visual = self.visual
        gh, gw = x.shape[2] // self.patch, x.shape[3] // self.patch
        tokens = visual.conv1(x).flatten(2).transpose(1, 2)
        cls = visual.class_embedding.to(tokens.dtype).expand(tokens.shape[0], 1, -1)
        pos = interpolate_pos_embed(visual.positional_embedding, visual.grid_size, (gh, gw))
        h = visual.ln_pre(torch.cat([cls, tokens], dim=1) + pos.to(tokens.dtype))
        blocks = visual.transformer.resblocks
        for block in blocks[:-1]:
            h = block(h)
        last = blocks[-1]
        if self.config.readout == "tokens":
            h = last(h)
        else:
            width = h.shape[-1]
            attn = last.attn
            value = F.linear(last.ln_1(h), attn.in_proj_weight[2 * width:], attn.in_proj_bias[2 * width:])
            value = attn.out_proj(value)
            if self.config.value_residual:
                h = h + last.ls_1(value)
                h = h + last.ls_2(last.mlp(last.ln_2(h)))
            else:
                h = value
        h = visual.ln_post(h[:, 1:])
        if visual.proj is not None:
            h = h @ visual.proj
        return h.transpose(1, 2).reshape(h.shape[0], -1, gh, gw)

    def _resnet_grid(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) -> (B, D, h/32, w/32): the attention pool's value and output
        projections as 1x1 convolutions (MaskCLIP)."""
        visual = self.visual
        h = visual.stem(x)
        h = visual.layer4(visual.layer3(visual.layer2(visual.layer1(h))))
        pool = visual.attnpool
        h = h.permute(0, 2, 3, 1)
        h = F.linear(F.linear(h, pool.v_proj.weight, pool.v_proj.bias), pool.c_proj.weight, pool.c_proj.bias)
        return h.permute(0, 3, 1, 2)

    def _window_grid(self, x: torch.Tensor) -> torch.Tensor:
        """Each window's pooled embedding fills the grid cell at its centre."""
        size, stride = self.window, self.stride
        _, _, height, width = x.shape
        ys = list(range(0, height - size + 1, stride))
        xs = list(range(0, width - size + 1, stride))
        crops = torch.stack([x[:, :, y:y + size, x0:x0 + size] for y in ys for x0 in xs], dim=1)
        batch = crops.shape[0]
        crops = crops.flatten(0, 1)
        embeds = torch.cat([self.loaded.model.encode_image(chunk)
                            for chunk in crops.split(max(self.config.batch_size * 8, 1))])
        embeds = embeds.reshape(batch, len(ys), len(xs), -1)
        gh, gw = height // stride, width // stride
        offset = (size // 2 - stride // 2) // stride  # cell of the first window's centre
        rows = torch.clamp(torch.arange(gh) - offset, 0, len(ys) - 1)
        cols = torch.clamp(torch.arange(gw) - offset, 0, len(xs) - 1)
        grid = embeds[:, rows][:, :, cols]
        return grid.permute(0, 3, 1, 2)

    def _pass(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.readout == "window":
            return self._window_grid(x)
        return self._vit_grid(x) if self.is_vit else self._resnet_grid(x)

    def _sliding(self, x: torch.Tensor) -> torch.Tensor:
        """value/tokens in overlapping windows of the model's size, averaged where they overlap.
        All windows of a batch run together, in chunks of batch_size * 16 windows."""
        size, p = self.window, self.patch
        stride = max(p, (self.config.window_stride or size // 2) // p * p)
        batch, _, height, width = x.shape
        ys = sorted(set(range(0, height - size + 1, stride)) | {height - size})
        xs = sorted(set(range(0, width - size + 1, stride)) | {width - size})
        corners = [(y, x0) for y in ys for x0 in xs]
        crops = torch.stack([x[:, :, y:y + size, x0:x0 + size] for y, x0 in corners], dim=1).flatten(0, 1)
        parts = torch.cat([self._pass(chunk) for chunk in crops.split(max(1, self.config.batch_size * 16))])
        parts = parts.reshape(batch, len(corners), *parts.shape[1:])
        total = torch.zeros(batch, parts.shape[2], height // p, width // p, dtype=parts.dtype, device=x.device)
        count = torch.zeros(1, 1, height // p, width // p, dtype=parts.dtype, device=x.device)
        for index, (y, x0) in enumerate(corners):
            total[:, :, y // p:(y + size) // p, x0 // p:(x0 + size) // p] += parts[:, index]
            count[:, :, y // p:(y + size) // p, x0 // p:(x0 + size) // p] += 1
        return total / count

    @torch.no_grad()
    def features(self, images: np.ndarray) -> torch.Tensor:
        """(B, H, W, 3) uint8 images of one size -> (B, D, h, w) float32 features, averaged
        over the configured scales on the grid of the first scale."""
        height, width = images.shape[1:3]
        out = None
        for scale in self.config.scales:
            shape = self.resized_shape(height, width, scale)
            x = self.prepare(images, shape)
            with self._autocast():
                grid = self._sliding(x) if (self.config.sliding and self.config.readout != "window") else self._pass(x)
            grid = grid.float()
            if out is None:
                out = grid
            else:
                out = out + F.interpolate(grid, size=out.shape[-2:], mode="bilinear", align_corners=False)
        return out / len(self.config.scales)

    def _autocast(self):
        precision = self.config.precision
        if precision == "auto":
            precision = "bf16" if is_cuda(self.device) else "fp32"
        if precision == "fp32":
            return torch.autocast("cpu", enabled=False)
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast("cuda" if is_cuda(self.device) else "cpu", dtype=dtype)


def cosine_logits(grid: torch.Tensor, text: torch.Tensor, scale: float) -> torch.Tensor:
    """(B, D, h, w) features, (C, D) unit text embeddings -> (B, C, h, w) scale * cosine."""
    return scale * torch.einsum("bdhw,cd->bchw", F.normalize(grid, dim=1), text)


def sample_grid(grid: torch.Tensor, uv: torch.Tensor, image_size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """(C, h, w) grid covering an image of (W, H) pixels, (P, 2) pixel coords -> (P, C)."""
    width, height = image_size
    norm = torch.stack([(uv[:, 0] + 0.5) / width * 2 - 1, (uv[:, 1] + 0.5) / height * 2 - 1], dim=1)
    out = F.grid_sample(grid[None].float(), norm[None, None].float(), mode=mode, align_corners=False,
                        padding_mode="border")
    return out[0, :, 0].T


def prompt_denoise(logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """MaskCLIP prompt denoising: classes whose best confidence in an image stays below
    ``threshold`` are removed from that image's candidates. logits (B, C, h, w)."""
    if threshold <= 0:
        return logits
    confidence = logits.softmax(dim=1).amax(dim=(2, 3))          # (B, C)
    keep = confidence >= threshold
    keep[keep.sum(1) == 0] = True                                  # never remove every class
    return logits.masked_fill(~keep[:, :, None, None], float("-inf"))


def key_smooth(logits: torch.Tensor, grid: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Smooth logits over cells with similar features (MaskCLIP's key smoothing uses the last
    attention keys; the dense features play that role here): each cell's logits become the
    similarity-weighted mean over the image's cells."""
    b, c, h, w = logits.shape
    f = F.normalize(grid.flatten(2), dim=1)                        # (B, D, hw)
    weights = torch.softmax(torch.einsum("bdi,bdj->bij", f, f) / temperature, dim=-1)
    flat = logits.flatten(2).masked_fill(torch.isinf(logits.flatten(2)), -1e4)
    smoothed = torch.einsum("bij,bcj->bci", weights, flat).reshape(b, c, h, w)
    return smoothed.masked_fill(torch.isinf(logits), float("-inf"))


__all__ = ["DenseCLIP", "cosine_logits", "sample_grid", "prompt_denoise", "key_smooth",
           "interpolate_pos_embed"]
