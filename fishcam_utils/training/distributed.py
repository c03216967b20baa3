"""Training beyond one process: DistributedDataParallel under ``torchrun``.

``torchrun --nproc-per-node 2 -m fishcam_utils.cli train ...`` starts one process per device;
each calls ``init_distributed()``, which joins the process group (gloo on CPU, NCCL on CUDA).
``fit`` then shards the data, wraps the model in DDP and lets rank 0 alone write files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, RandomSampler, Sampler
from torch.utils.data.distributed import DistributedSampler


def launched_by_torchrun() -> bool:
    """True in a process started by ``torchrun`` (it sets ``RANK`` and ``WORLD_SIZE``)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_distributed(backend: str | None = None) -> bool:
    """Join the process group when launched by ``torchrun``; returns whether training is distributed."""
    if dist.is_available() and dist.is_initialized():
        return True
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) < 2:
        return False
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend=backend)
    return True


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """Rank 0 (or a plain single process): the one that prints and writes files."""
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum ``values`` over all processes (unchanged in a single process)."""
    if not is_distributed():
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...``: each sample seen by exactly one process, no padding,
    so that metrics summed over processes are exact (``DistributedSampler`` repeats samples)."""

    def __init__(self, length: int, rank: int, world: int) -> None:
        self.length, self.rank, self.world = length, rank, world

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.length, self.world))

    def __len__(self) -> int:
        return len(range(self.rank, self.length, self.world))


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def sampler_for(dataset: Dataset, train: bool, seed: int, generator: torch.Generator | None) -> Sampler:
    """Training: a random order drawn from ``generator`` in one process, ``DistributedSampler`` (seeded,
    one shard per process) under torchrun. Evaluation: ``ShardSampler``, every sample exactly once."""
    world, here = world_size(), rank()
    if not train:
        return ShardSampler(len(dataset), here, world)
    if world > 1:
        return DistributedSampler(dataset, num_replicas=world, rank=here, shuffle=True, seed=seed)
    return RandomSampler(dataset, generator=generator)


def wrap_ddp(inner: nn.Module, device: torch.device) -> nn.Module:
    """``inner`` in DistributedDataParallel, on its GPU under CUDA."""
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(inner, device_ids=ids)


def sync_buffers(inner: nn.Module) -> None:
    """Give every process rank 0's BatchNorm statistics, so that all evaluate the model rank 0 saves."""
    if is_distributed():
        for buffer in inner.buffers():
            torch.distributed.broadcast(buffer, src=0)
