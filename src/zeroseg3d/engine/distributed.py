"""torch.distributed under torchrun: NCCL on GPUs, gloo on CPUs. Without torchrun's
environment everything here is a no-op and the run is a single process."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from zeroseg3d.utils.device import is_cuda


def init_from_env(device: str) -> tuple[int, int]:
    """(rank, world size); initialises the process group when torchrun started us."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if is_cuda(device) else "gloo"
        dist.init_process_group(backend=backend)
        if is_cuda(device):
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return dist.get_rank(), dist.get_world_size()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier() -> None:
    """Ends a run: destroy_process_group can abort a rank that is still exiting, a barrier cannot."""
    if is_distributed():
        dist.barrier()
