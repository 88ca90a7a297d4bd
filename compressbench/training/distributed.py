"""Data-parallel training under ``torchrun``: the same code runs alone or as one of N processes.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
when they are present :func:`setup` joins the process group (gloo on CPU, nccl on CUDA) and the
trainer wraps its model in DistributedDataParallel. Without them everything is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from compressbench.errors import CompressbenchError

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistContext:
    """Who this process is in the run, and the device it trains on."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    owns_group: bool = False  # True when setup() created the process group (so teardown ends it)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module to train: ``model`` itself, or ``model`` inside DistributedDataParallel."""
        if not self.distributed:
            return model
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    @staticmethod
    def unwrap(model: nn.Module) -> nn.Module:
        """The module :meth:`wrap` was given: the one inside DistributedDataParallel, or ``model`` itself."""
        return model.module if isinstance(model, DistributedDataParallel) else model

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (picklable plain values only)."""
        if not self.distributed:
            return obj
        holder = [obj]
        dist.broadcast_object_list(holder, src=0, device=self._collective_device)
        return holder[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def mean(self, value: float) -> float:
        """The mean of a scalar over all ranks (for logging the loss of the whole global batch)."""
        if not self.distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self._collective_device)
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.world_size

    def teardown(self, clean: bool = True) -> None:
        """Leave the process group. After a clean run every rank first waits for the others: a gloo
        peer that closes while another is still in its last collective aborts that one (SIGABRT).
        After an error there is no waiting (the others may never arrive)."""
        if self.owns_group and dist.is_initialized():
            if clean:
                dist.barrier()
            dist.destroy_process_group()

    @property
    def _collective_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")


def torchrun_env() -> bool:
    """True when this process was started by ``torchrun`` (or anything that sets its variables)."""
    return all(name in os.environ for name in TORCHRUN_VARS)


def is_main_process() -> bool:
    """False only in the non-zero ranks of a ``torchrun`` run (they train but report nothing)."""
    return int(os.environ.get("RANK", "0")) == 0


def resolve_device(device: str) -> torch.device:
    """``cpu`` or ``cuda``; CUDA must exist when asked for."""
    if device not in ("cpu", "cuda"):
        raise CompressbenchError(f"unknown device {device!r}; choose cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise CompressbenchError("device cuda was asked for but CUDA is not available here; use --device cpu")
    return torch.device(device)


def setup(device: str = "cpu") -> DistContext:
    """Join the ``torchrun`` process group if there is one; pick this rank's device."""
    base = resolve_device(device)
    if not torchrun_env():
        return DistContext(device=base)
    rank, world_size, local_rank = (int(os.environ[name]) for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if base.type == "cuda":
        base = torch.device("cuda", local_rank)
        torch.cuda.set_device(base)
    owns_group = False
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if base.type == "cuda" else "gloo")
        owns_group = True
    return DistContext(device=base, rank=rank, world_size=world_size, owns_group=owns_group)
