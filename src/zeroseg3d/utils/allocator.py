"""The C allocator of a process that predicts scan after scan."""

from __future__ import annotations

import sys

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> bool:
    """Have glibc keep freed memory for the next allocations instead of handing it back to the
    system. By default every block over its dynamic threshold is mapped fresh and unmapped when
    freed, so each scan's tensors fault their pages in again: 30,000-55,000 page faults per
    inference of the small student at 0.05 m, 1.1-1.4x its time in bfloat16
    (docs/results.md). Afterwards the process keeps its peak memory until it exits, so
    ``zeroseg3d predict`` and ``evaluate`` call it and training does not. Process-wide; returns
    whether it applied (glibc only; elsewhere nothing changes)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    # blocks up to 32 MiB (glibc's largest threshold) come from the heap; free heap is kept
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1))
