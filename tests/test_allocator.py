"""keep_freed_memory: freed blocks are reused, not faulted in again (in a child process: the
setting is process-wide)."""

import subprocess
import sys

import pytest

CHILD = """
import resource
import numpy as np
from zeroseg3d.utils.allocator import keep_freed_memory

def faults():   # blocks of mixed sizes, two alive at a time, as a network's tensors
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        alive = []
        for mib in (3, 20, 7, 12, 30, 5, 24, 9):
            alive = alive[-1:] + [np.ones(mib << 17)]   # mib MiB, written
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start

faults()
before = faults()
applied = keep_freed_memory()
faults()   # the heap grows to what the pattern needs, once
print(applied, before, faults())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_blocks_are_reused_without_page_faults():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout.split()
    applied, before, after = out[0] == "True", int(out[1]), int(out[2])
    assert applied
    assert before > 5000   # glibc's defaults map and unmap blocks over and over
    assert after < 100
