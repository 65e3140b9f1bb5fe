"""spconv on machines without CUDA.

spconv 2.3.x asks ``torch.cuda.current_stream()`` for a stream handle in several backward
(and pair-generation) paths even when every tensor is on the CPU, which raises "Found no
NVIDIA driver" and makes CPU training impossible. The handle is ignored by spconv's CPU
kernels, so on a machine without CUDA we hand it 0 instead. With CUDA available nothing is
changed. This module is the only place that touches spconv's internals.
"""

from __future__ import annotations

_PATCHED = False


def _no_cuda_stream() -> int:
    return 0


def import_spconv():
    """``spconv.pytorch``, made usable for CPU training when CUDA is absent."""
    global _PATCHED
    import torch

    try:
        import spconv.pytorch as spconv
    except ImportError as exc:
        from zeroseg3d.errors import ZeroSeg3DError

        raise ZeroSeg3DError(
            f"the sparse backbone needs spconv ({exc}); install spconv (CPU) or the spconv-cu12x "
            "wheel matching your CUDA") from None
    if not _PATCHED and not torch.cuda.is_available():
        from spconv.pytorch import cppcore, hash as spconv_hash, ops

        for module in (cppcore, ops, spconv_hash):
            if hasattr(module, "get_current_stream"):
                module.get_current_stream = _no_cuda_stream
        _PATCHED = True
    return spconv
