"""Data-parallel training with torchrun: one run spread over processes, on one machine or several.

Launched by torchrun (it sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous), each process
joins PyTorch's process group (gloo on CPUs, NCCL on GPUs), trains the same model wrapped in
DistributedDataParallel on its shard of every global batch, and agrees with the others on
everything that decides the run: metrics are summed over the processes, the clock of a time
budget is rank 0's, validation and test score each image exactly once. Without torchrun every
function here is the identity of a world of one, so a plain run is unchanged.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch


@dataclass(frozen=True)
class World:
    """This process's place among the run's processes."""

    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0 writes the run folder, the checkpoints, the log and the cache."""
        return self.rank == 0


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def launched() -> bool:
    """Whether torchrun started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def world() -> World:
    """This process's place (rank 0 of 1 when no process group is joined)."""
    dist = _dist()
    if dist is None:
        return World()
    return World(dist.get_rank(), dist.get_world_size())


def join(device: torch.device) -> World:
    """Join torchrun's process group (gloo on CPUs, NCCL on GPUs) when launched by it."""
    if not launched():
        return World()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return world()


def leave() -> None:
    """Leave the process group once every rank is done with it (a rank that left while another still
    wrote its results made gloo abort)."""
    dist = _dist()
    if dist is not None:
        import gc

        gc.collect()  # what still holds the group (a DistributedDataParallel wrapper) is released first
        dist.barrier()
        dist.destroy_process_group()


def shard_range(n: int, w: World) -> tuple[int, int]:
    """This rank's contiguous part of n items: sizes differ by at most one, nothing repeats or pads."""
    per, extra = divmod(n, w.size)
    start = w.rank * per + min(w.rank, extra)
    return start, start + per + (1 if w.rank < extra else 0)


def whole_batches(it: Iterator) -> Iterator[tuple[torch.Tensor, torch.Tensor, float]]:
    """The data step of one process: every batch whole, its loss at weight 1."""
    for xb, yb in it:
        yield xb, yb, 1.0


def shard_batches(it: Iterator, w: World) -> Iterator[tuple[torch.Tensor, torch.Tensor, float]]:
    """The data-sharding step: each global batch cut into the ranks' parts, with this rank's loss weight.

    Every rank draws the same global batches (the same seeded order and augmentation as one
    process) and keeps its rows. DistributedDataParallel averages the ranks' gradients, so a
    rank's mean loss is weighted by size x its share of the batch: the average is then the
    gradient of the global batch's mean loss, even when the last batch does not split evenly.
    """
    for xb, yb in it:
        a, b = shard_range(len(yb), w)
        yield xb[a:b], yb[a:b], w.size * (b - a) / len(yb)


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """`t` summed over the ranks (in place; unchanged in a world of one)."""
    dist = _dist()
    if dist is not None:
        dist.all_reduce(t)
    return t


def agreed(value: float) -> float:
    """Rank 0's value of a number, on every rank (the time-budget clock, the test-time reserve)."""
    dist = _dist()
    if dist is None:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.broadcast(t, 0)
    return float(t)


def now() -> float:
    """perf_counter seconds of rank 0, the clock every rank's time budget and schedule follow."""
    return agreed(time.perf_counter())


def same_buffers(model: torch.nn.Module) -> None:
    """Every rank takes rank 0's buffers (batch-norm running statistics), which its checkpoint saves:
    evaluation then scores the weights that are kept. A no-op in a world of one."""
    dist = _dist()
    if dist is not None:
        for b in model.buffers():
            dist.broadcast(b, 0)


@contextmanager
def main_first():
    """Rank 0 runs the block first (decoding and caching the data), the others after it, from its cache."""
    dist = _dist()
    if dist is not None and dist.get_rank() != 0:
        dist.barrier()
    try:
        yield
    finally:
        if dist is not None and dist.get_rank() == 0:
            dist.barrier()
