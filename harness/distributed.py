"""Data-parallel evaluation under torchrun: which rank this process is, and the two collectives.

Why: a model fits on one device but a suite takes hours. ``torchrun --nproc_per_node N
harness run ...`` starts N identical processes; each builds the same instances, answers
1/N of the unique requests (:func:`harness.answering.run_requests` deals out whole chunks), and every
rank gets every answer back (``all_gather_object``), so scoring is the same code on the
same numbers as in one process. Rank 0 alone reads and writes the request cache, the run
directory and the report. gloo on CPU, NCCL when ``--device cuda`` (each rank on
``cuda:LOCAL_RANK``).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

from .errors import HarnessError


@dataclass(frozen=True)
class Dist:
    """This process's place in the job; ``Dist()`` is a single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (``[obj]`` in one process)."""
        if not self.active:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def check_same(self, what: str, items: list[Any]) -> None:
        """Fail on every rank if the ranks built different ``items`` (sharding would mix them up)."""
        if not self.active:
            return
        h = hashlib.sha256()
        for item in items:
            h.update(repr(item).encode())
        if len(set(self.all_gather(h.hexdigest()))) > 1:
            raise HarnessError(f"{what}: the ranks built different requests; every rank needs the same data, "
                               "options and plug-ins")


SINGLE = Dist()


def from_env(device: str = "cpu") -> Dist:
    """The job torchrun started (``WORLD_SIZE`` > 1 in the environment), initialising
    torch.distributed once; a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return SINGLE
    local_rank = int(os.environ.get("LOCAL_RANK", "0") or 0)
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        cuda = str(device).startswith("cuda")
        if cuda:
            torch.cuda.set_device(local_rank)
        try:
            dist.init_process_group("nccl" if cuda else "gloo")
        except (RuntimeError, ValueError) as exc:
            raise HarnessError(f"torchrun: cannot join the process group ({exc}); "
                               "check MASTER_ADDR/MASTER_PORT or torchrun's --rdzv flags") from None
    return Dist(dist.get_rank(), dist.get_world_size(), local_rank)


def rank_device(device: str, d: Dist) -> str:
    """``cuda`` means this rank's own GPU (``cuda:LOCAL_RANK``) in a multi-process job."""
    return f"cuda:{d.local_rank}" if d.active and device == "cuda" else device
