"""spconv 2.3.x: three fixes, and the only place that touches spconv's internals.

1. Backward without CUDA. spconv asks ``torch.cuda.current_stream()`` for a stream handle in
   several backward (and pair-generation) paths even when every tensor is on the CPU, which
   raises "Found no NVIDIA driver". Its CPU kernels ignore the handle, so on a machine without
   CUDA we hand it 0.

2. A data race in the CPU convolution. Every CPU sparse convolution (forward and backward)
   ends each kernel offset with ``SpconvOps.scatter_add_cpu``, whose parallel loop
   (spconv/csrc/sparse/gather.py, ``GatherCPU::scatter_add``) writes through two pointers
   captured by reference and shared by all threads. With more than one thread, rows are added
   to the wrong output rows: on a 30k-voxel submanifold convolution the result differed from a
   dense convolution by up to 0.6 (0.0 with one thread), training was not reproducible, and
   predictions depended on the thread count. We run that one kernel on a single thread
   (the rest of the convolution keeps all threads); GPU tensors never reach it.

3. A warning for spconv's code in every process. ``SparseConvTensor`` is a torch.fx proxyable
   class, so constructing one asks ``torch.fx.is_fx_tracing()``, which torch 2.x answers with a
   log warning about that function's meaning (once per process, in the middle of a progress
   bar). Only that record of torch's fx logger is dropped.
"""

from __future__ import annotations

import logging

_PATCHED_STREAM = False
_PATCHED_SCATTER = False
FX_LOGGER = "torch.fx._symbolic_trace"


class _DropFxTracingWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("is_fx_tracing will return true")


def _no_cuda_stream() -> int:
    return 0


class _SpconvOpsFixed:
    """spconv's ``SpconvOps`` with the racy CPU scatter-add replaced; everything else delegates."""

    def __init__(self, ops):
        self._ops = ops

    def __getattr__(self, name):
        return getattr(self._ops, name)

    def scatter_add_cpu(self, out, inp, inds) -> None:
        """spconv's kernel on one thread: exact, and faster than torch's index_add_ (docs/results.md)."""
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            self._ops.scatter_add_cpu(out, inp, inds)
        finally:
            torch.set_num_threads(threads)


def import_spconv():
    """``spconv.pytorch``, made correct on the CPU with any thread count and usable for CPU
    training when CUDA is absent."""
    global _PATCHED_STREAM, _PATCHED_SCATTER
    import torch

    try:
        import spconv.pytorch as spconv
    except ImportError as exc:
        from zeroseg3d.errors import ZeroSeg3DError

        raise ZeroSeg3DError(
            f"the sparse backbone needs spconv ({exc}); install zeroseg3d with the spconv build of "
            "your machine: pip install 'zeroseg3d[cpu]', or [cu126] (cu118, cu120, cu121, cu124) on a GPU") from None
    fx_logger = logging.getLogger(FX_LOGGER)
    if not any(isinstance(f, _DropFxTracingWarning) for f in fx_logger.filters):
        fx_logger.addFilter(_DropFxTracingWarning())
    if not _PATCHED_SCATTER:
        from spconv.pytorch import ops

        ops.SpconvOps = _SpconvOpsFixed(ops.SpconvOps)
        _PATCHED_SCATTER = True
    if not _PATCHED_STREAM and not torch.cuda.is_available():
        from spconv.pytorch import cppcore, hash as spconv_hash, ops

        for module in (cppcore, ops, spconv_hash):
            if hasattr(module, "get_current_stream"):
                module.get_current_stream = _no_cuda_stream
        _PATCHED_STREAM = True
    return spconv
