"""Data-parallel fine-tuning under ``torchrun``: one process per rank, DistributedDataParallel.

``torchrun --nproc_per_node N -m harness finetune ...`` sets ``WORLD_SIZE``/``RANK``; we join
the process group (gloo on CPU, NCCL on GPU). Every rank builds the same epoch
batches from the seed and takes its share of each optimizer step's group of
``grad_accum x world`` micro-batches, so a run on N ranks makes the same updates as
one process with ``--grad-accum`` N times larger (the same global batch). Rank 0
alone writes files; losses and token counts are summed over ranks.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..errors import HarnessError


@dataclass(frozen=True)
class Ranks:
    """This process's place in the run: ``rank`` of ``world`` (1 when not distributed)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: list[float]) -> list[float]:
        """``values`` summed over all ranks (float64, so sums of losses stay exact enough)."""
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        torch.distributed.all_reduce(t)
        return t.tolist()


def from_env(device: str) -> tuple[Ranks, str]:
    """Join the process group torchrun describes; returns the ranks and this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return Ranks(), device
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.device(device).type == "cuda"
    if cuda:
        if torch.cuda.device_count() <= local:
            raise HarnessError(f"torchrun: local rank {local} has no GPU ({torch.cuda.device_count()} visible); "
                               "lower --nproc_per_node")
        device = f"cuda:{local}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return Ranks(rank, world), device


def close(ranks: Ranks) -> None:
    if ranks.world > 1 and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def wrap(module: torch.nn.Module, ranks: Ranks, device: str) -> torch.nn.Module:
    """DistributedDataParallel around ``module`` (it averages gradients over ranks in backward)."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.device(device).index] if torch.device(device).type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)
