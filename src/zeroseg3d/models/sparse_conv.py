"""Sparse convolutions with bfloat16 products on the CPU, on spconv's rulebooks; float16 ones on a GPU.

spconv keeps the bookkeeping (sparse tensors, the hash-built rulebook of (input, output) voxel
pairs per kernel offset, indice keys shared between layers) and, on the CPU, runs float32 only
(its CPU gather has no bfloat16 kernel). Under CPU autocast with bfloat16 the convolution here
is, per kernel offset, ``out[o] += x[i] @ W_k`` with torch's index_select / mm / index_add_,
the products in bfloat16 (the CPU's bfloat16 units do 2-3x the float32 matrix rate at the
student's widths: docs/results.md) and the sums in float32; the features that leave a layer
are float32, so batch norms and everything after them run as before. Layers with less work
than BF16_MIN_WORK run in float32 under autocast too. In float32 spconv's own kernels run (as
fast as this loop, and faster for narrow layers). On a GPU spconv's kernels always run, in
float16 under autocast (``gpu_compute_dtype``).

On the CPU the rulebooks of 3x3x3 submanifold and kernel-2 stride-2 convolutions over 20,000
voxels or more come from models/rulebook.py in spconv's layout (1.5-2.4x faster than spconv's
hashing there), in both precisions.
A submanifold rulebook lists each neighbour pair once, for the offsets before the kernel's
centre; the mirrored offset's pairs are the same pairs reversed.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from zeroseg3d.models.rulebook import downsample_pairs, submanifold_pairs


# below this many voxels spconv's hashing is as fast as models/rulebook.py, whose torch calls
# cost a fixed ~2 ms (benchmarks/results/rulebook.json)
OWN_RULEBOOK_MIN_VOXELS = 20_000
# under bfloat16 autocast a layer runs its products in bfloat16 when voxels x C_in x C_out
# reaches this; smaller layers (the small student's stem, the coarse levels of small scans)
# run in float32, where the conversions and per-offset calls would cost more than the
# bfloat16 products save (docs/results.md)
BF16_MIN_WORK = 40_000_000


def compute_dtype() -> torch.dtype:
    """bfloat16 inside ``torch.autocast("cpu", dtype=torch.bfloat16)``, float32 otherwise."""
    if torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16:
        return torch.bfloat16
    return torch.float32


def gpu_compute_dtype() -> torch.dtype | None:
    """The dtype of sparse convolutions on a GPU under autocast (None outside it): float16
    whatever autocast's dtype, as spconv's own training path casts (spconv 2.3.8 has no
    bfloat16 kernels: KeyError)."""
    return torch.float16 if torch.is_autocast_enabled("cuda") else None


def rules(pairs: torch.Tensor, counts: list[int], subm: bool, inverse: bool) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
    """(kernel offset, input rows, output rows) for every offset with pairs, from spconv's
    native rulebook ``pairs`` (2, offsets, N) and its per-offset ``counts``."""
    offsets = len(counts)
    source, target = (1, 0) if inverse else (0, 1)
    mirrored = subm and not any(counts[offsets // 2 + 1:])
    out = []
    for k, n in enumerate(counts):
        if n == 0 or (subm and k == offsets // 2):
            continue
        # int64 rows: torch's index_add_ is several times slower with spconv's int32 ones
        a, b = pairs[source, k, :n].long(), pairs[target, k, :n].long()
        out.append((k, a, b))
        if mirrored:
            out.append((offsets - 1 - k, b, a))
    return out


def bucket(rows: int) -> int:
    """``rows`` rounded up to one of few sizes (steps of 2**0.25, multiples of 16). oneDNN's
    bfloat16 matrix product builds a kernel for every new shape (about 0.45 ms, against 0.03 ms
    for the product itself at the demo's sizes), and a rulebook's row counts change with every
    scan: padded to these sizes they repeat, and the kernels are reused."""
    if rows <= 64:
        return max(16, -(-rows // 16) * 16)
    return -(-math.ceil(2 ** (math.ceil(4 * math.log2(rows)) / 4)) // 16) * 16


def padded(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``t`` (n, C) in ``dtype`` with zero rows up to bucket(n)."""
    if t.requires_grad:   # the 1x1 convolution's input, under autograd
        return F.pad(t.to(dtype), (0, 0, 0, bucket(len(t)) - len(t)))
    out = t.new_empty(bucket(len(t)), t.shape[1], dtype=dtype)
    out[:len(t)].copy_(t)
    out[len(t):].zero_()
    return out


class _Scratch:
    """Per-call buffers for each offset's gathered rows and products. Reusing them, instead of
    allocating tensors of a new size for every offset, keeps the process's peak memory near
    spconv's (the allocator holds on to freed blocks of odd sizes)."""

    def __init__(self, rows: int, channels_in: int, channels_out: int, dtype: torch.dtype):
        rows = bucket(rows)
        self.gathered = torch.empty(rows, channels_in, dtype=dtype)
        self.product = torch.empty(rows, channels_out, dtype=dtype)
        self.product32 = torch.empty(rows, channels_out)

    def gather(self, x: torch.Tensor, rows: torch.Tensor, buffer: torch.Tensor | None = None) -> torch.Tensor:
        """x[rows] in ``buffer`` (default: the gathered rows' own), zero rows after them up to
        the padded count."""
        buffer = self.gathered if buffer is None else buffer
        n, m = len(rows), bucket(len(rows))
        torch.index_select(x, 0, rows, out=buffer[:n])
        buffer[n:m].zero_()
        return buffer[:m]

    def gather_mm(self, x: torch.Tensor, rows: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """x[rows] @ w as float32, in the buffers."""
        gathered = self.gather(x, rows)
        product = torch.mm(gathered, w, out=self.product[:len(gathered)])[:len(rows)]
        return self.product32[:len(rows)].copy_(product)


class GatherMatmulScatter(torch.autograd.Function):
    """out = x @ W_centre (submanifold) + sum over offsets k of scatter(x[in_k] @ W_k, out_k).

    ``weight`` is spconv's (C_out, offsets, C_in) view of its KRSC weight. Products run in
    ``dtype`` (bfloat16); sums, the output and the gradients are float32.
    """

    @staticmethod
    def forward(ctx, features, weight, rulebook, n_out, centre, dtype):
        with torch.autocast("cpu", enabled=False):
            x = padded(features, dtype)
            w = weight.to(dtype).permute(1, 2, 0).contiguous()       # (offsets, C_in, C_out)
            if centre is not None:
                out = torch.mm(x, w[centre])[:n_out].float()
            else:
                out = features.new_zeros(n_out, w.shape[2], dtype=torch.float32)
            if rulebook:
                scratch = _Scratch(max(len(s) for _, s, _ in rulebook), w.shape[1], w.shape[2], dtype)
                for k, source, target in rulebook:
                    out.index_add_(0, target, scratch.gather_mm(x, source, w[k]))
        # the float32 input stays alive for the layers around anyway; a saved bfloat16 copy would
        # add half of it again for every convolution
        ctx.save_for_backward(features, weight)
        ctx.rulebook, ctx.centre, ctx.dtype = rulebook, centre, dtype
        return out

    @staticmethod
    def backward(ctx, grad):
        features, weight = ctx.saved_tensors
        n_in = len(features)
        with torch.autocast("cpu", enabled=False):
            x = padded(features, ctx.dtype)
            w = weight.to(ctx.dtype).permute(1, 2, 0).contiguous()
            g = padded(grad.contiguous(), ctx.dtype)
            grad_w = torch.zeros(w.shape, dtype=torch.float32)
            if ctx.centre is not None:
                grad_x = torch.mm(g, w[ctx.centre].T)[:n_in].float()
                grad_w[ctx.centre] = torch.mm(x.T, g).float()
            else:
                grad_x = torch.zeros(n_in, w.shape[1], dtype=torch.float32)
            if ctx.rulebook:
                scratch = _Scratch(max(len(s) for _, s, _ in ctx.rulebook), w.shape[2], w.shape[1], ctx.dtype)
                inputs = torch.empty(scratch.gathered.shape[0], w.shape[1], dtype=ctx.dtype)
                for k, source, target in ctx.rulebook:
                    grad_x.index_add_(0, source, scratch.gather_mm(g, target, w[k].T))
                    # zero rows pad both sides of the weight gradient's product: they add nothing
                    x_k = scratch.gather(x, source, inputs)
                    grad_w[k] += torch.mm(x_k.T, scratch.gathered[:len(x_k)]).float()
        return grad_x, grad_w.permute(2, 0, 1), None, None, None, None


class _Products:
    """Mixed into spconv's convolution modules: the bfloat16 CPU path above, spconv's kernels
    everywhere else (on a GPU under autocast, in float16)."""

    def forward(self, input):
        features = input.features
        if input.is_quantized:
            return super().forward(input)
        if features.is_cuda:
            dtype = gpu_compute_dtype()
            if dtype is None:
                return super().forward(input)
            # Under autocast spconv's inference ran in the features' dtype (float32 SIMT kernels,
            # no tensor cores: 4-5x slower, benchmarks/results/gpu_student_variants.json); here training
            # and inference both run in float16 on the tensor cores.
            with torch.autocast("cuda", enabled=False):
                return self._conv_forward(self.training, input.replace_feature(features.to(dtype)),
                                          self.weight.to(dtype), None if self.bias is None else self.bias.to(dtype),
                                          name=self.name, sparse_unique_name=self._sparse_unique_name)
        if (self.indice_key is not None and len(features) >= OWN_RULEBOOK_MIN_VOXELS and self._submanifold3()
                and input.find_indice_pair(self.indice_key) is None):
            input = self._with_rulebook(input)
        dtype = compute_dtype()
        if dtype != torch.float32 and len(features) * self.in_channels * self.out_channels < BF16_MIN_WORK:
            with torch.autocast("cpu", enabled=False):   # or spconv's matrix products would be bfloat16
                return self._float32(input, features)
        if dtype == torch.float32:
            return self._float32(input, features)
        return self._bfloat16(input, features, dtype)

    def _float32(self, input, features):
        """spconv's float32 kernels (kernel-2 stride-2 convolutions over zeroseg3d's rulebook)."""
        if self._own_downsample(features) and (self.indice_key is None
                                               or input.find_indice_pair(self.indice_key) is None):
            return self._downsample_float32(input)
        if self.bias is not None and not self.training and not self.conv1x1:
            # spconv's CPU kernels take no bias at inference (it asserts); its training
            # branch adds the bias after the convolution, which is all a bias is
            return self._conv_forward(True, input, self.weight, self.bias, name=self.name,
                                      sparse_unique_name=self._sparse_unique_name)
        return super().forward(input)

    def _bfloat16(self, input, features, dtype):
        """zeroseg3d's products in ``dtype`` (GatherMatmulScatter)."""
        from spconv.core import ConvAlgo
        from spconv.pytorch import ops

        c_out, c_in = self.out_channels, self.in_channels
        weight = self.weight.reshape(c_out, -1, c_in)
        if self.conv1x1:
            # spconv reads a 1x1 kernel's (C_out, 1, 1, 1, C_in) weight as (C_in, C_out); so do we,
            # or its checkpoints would change meaning
            out = torch.mm(padded(features, dtype), self.weight.view(c_in, c_out).to(dtype))[:len(features)].float()
            result = input.shadow_copy().replace_feature(self._bias(out))
            result.spatial_shape = input.spatial_shape
            return result
        indice_dict = input.indice_dict
        data = input.find_indice_pair(self.indice_key) if self.indice_key is not None else None
        if self.inverse:
            out_indices, out_shape = data.indices, data.spatial_shape
        elif data is not None:
            out_indices, out_shape = data.out_indices, data.out_spatial_shape
        else:
            if self._own_downsample(features):
                data = self._downsample_rulebook(input)
            else:
                shape = input.spatial_shape
                out_shape = shape if self.subm else ops.get_conv_output_size(
                    shape, self.kernel_size, self.stride, self.padding, self.dilation)
                out_indices, pairs, counts = ops.get_indice_pairs(
                    input.indices, input.batch_size, shape, ConvAlgo.Native, self.kernel_size, self.stride,
                    self.padding, self.dilation, self.output_padding, self.subm, self.transposed)
                data = self._indice_data(out_indices, input.indices, pairs, counts, shape, out_shape)
            out_indices, out_shape = data.out_indices, data.out_spatial_shape
            if self.indice_key is not None:
                indice_dict = {**indice_dict, self.indice_key: data}
        # layers sharing an indice key share its rulebook, converted once per direction
        cached = getattr(data, "zeroseg3d_rules", {})
        if self.inverse not in cached:
            cached[self.inverse] = rules(data.indice_pairs, data.indice_pair_num.tolist(), self.subm, self.inverse)
            data.zeroseg3d_rules = cached
        rulebook = cached[self.inverse]
        centre = weight.shape[1] // 2 if self.subm else None
        out = GatherMatmulScatter.apply(features.float(), weight, rulebook, out_indices.shape[0], centre, dtype)
        result = input.shadow_copy().replace_feature(self._bias(out))
        result.indices, result.indice_dict, result.spatial_shape = out_indices, indice_dict, out_shape
        return result

    def _downsample_float32(self, input):
        """A kernel-2 stride-2 convolution on spconv's float32 kernels over models/rulebook.py's
        rulebook, stored under the layer's indice key for the inverse convolution."""
        from spconv.core import ConvAlgo
        from spconv.pytorch import functional

        data = self._downsample_rulebook(input)
        out = functional.indice_conv(input.features, self.weight, data.indice_pairs, data.indice_pair_num,
                                     len(data.out_indices), ConvAlgo.Native, input._timer)
        result = input.shadow_copy().replace_feature(self._bias(out))
        result.indices, result.spatial_shape = data.out_indices, data.out_spatial_shape
        if self.indice_key is not None:
            result.indice_dict = {**input.indice_dict, self.indice_key: data}
        return result

    def _own_downsample(self, features: torch.Tensor) -> bool:
        """Whether this is a kernel-2 stride-2 convolution over enough voxels for
        models/rulebook.py's rulebook."""
        return self._downsample2() and len(features) >= OWN_RULEBOOK_MIN_VOXELS

    def _downsample_rulebook(self, input):
        """This kernel-2 stride-2 convolution's rulebook over ``input``, from models/rulebook.py."""
        out_indices, pairs, counts, out_shape = downsample_pairs(input.indices, input.spatial_shape)
        return self._indice_data(out_indices, input.indices, pairs, counts, input.spatial_shape, out_shape)

    def _indice_data(self, out_indices, indices, pairs, counts, shape, out_shape):
        """spconv's record of this layer's rulebook, as its own layers keep under an indice key."""
        from spconv.core import ConvAlgo
        from spconv.pytorch.core import IndiceData

        return IndiceData(out_indices, indices, pairs, counts, shape, out_shape, is_subm=self.subm,
                          algo=ConvAlgo.Native, ksize=self.kernel_size, stride=self.stride,
                          dilation=self.dilation, padding=self.padding)

    def _bias(self, out: torch.Tensor) -> torch.Tensor:
        return out if self.bias is None else out.add_(self.bias)   # ``out`` is this layer's own

    def _submanifold3(self) -> bool:
        from spconv.core import ConvAlgo

        return (self.subm and self.algo == ConvAlgo.Native and list(self.kernel_size) == [3, 3, 3]
                and list(self.dilation) == [1, 1, 1])

    def _downsample2(self) -> bool:
        return (not self.subm and not self.transposed and list(self.kernel_size) == [2, 2, 2]
                and list(self.stride) == [2, 2, 2] and list(self.padding) == [0, 0, 0]
                and list(self.dilation) == [1, 1, 1])

    def _with_rulebook(self, input):
        """``input`` with this layer's submanifold rulebook under its indice key, built by
        models/rulebook.py: spconv's forward and backward then reuse it instead of hashing."""
        pairs, counts = submanifold_pairs(input.indices, input.spatial_shape)
        data = self._indice_data(input.indices, input.indices, pairs, counts, input.spatial_shape,
                                 input.spatial_shape)
        result = input.shadow_copy()
        result.indice_dict = {**input.indice_dict, self.indice_key: data}
        return result


@functools.cache
def sparse_modules():
    """zeroseg3d's SubMConv3d, SparseConv3d and SparseInverseConv3d (spconv's modules, same
    parameters and state dicts, with the bfloat16 CPU products above), and spconv itself."""
    from types import SimpleNamespace

    from zeroseg3d.models.spconv_compat import import_spconv

    spconv = import_spconv()
    return SimpleNamespace(
        spconv=spconv,
        SubMConv3d=type("SubMConv3d", (_Products, spconv.SubMConv3d), {}),
        SparseConv3d=type("SparseConv3d", (_Products, spconv.SparseConv3d), {}),
        SparseInverseConv3d=type("SparseInverseConv3d", (_Products, spconv.SparseInverseConv3d), {}))
