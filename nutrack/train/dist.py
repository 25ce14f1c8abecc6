"""torch.distributed for training: the process's place in the job, its device, and the three
collectives the trainer needs. A single process (no ``torchrun``) is a world of one, and every
collective is then a no-op."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, List, Sequence, Tuple

import torch
import torch.distributed as tdist

from nutrack.train.errors import TrainingError

__all__ = ["Dist", "init_distributed", "parse_device", "shutdown", "all_sum", "barrier", "broadcast_obj", "any_process"]


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """The process that writes the run directory and evaluates."""
        return self.rank == 0

    @property
    def on(self) -> bool:
        return self.world > 1


def parse_device(arg: str, local_rank: int = 0, world: int = 1) -> torch.device:
    """The torch device of ``--device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``); a
    :class:`TrainingError` for a name torch does not know or a device this machine lacks."""
    if arg == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(arg)
    except (RuntimeError, ValueError):
        raise TrainingError(f"--device {arg!r}: not a device (expected auto, cpu, cuda or cuda:N)") from None
    if device.type not in ("cpu", "cuda"):
        raise TrainingError(f"--device {arg!r}: nutrack.train runs on cpu or cuda")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainingError(f"--device {arg}: CUDA is not available")
        if device.index is None and world > 1:
            device = torch.device(f"cuda:{local_rank}")  # one GPU per process
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise TrainingError(f"--device {arg}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def init_distributed(device_arg: str) -> Tuple[Dist, torch.device]:
    """This process's :class:`Dist` (from torchrun's environment) and device; joins the
    process group (NCCL on GPUs, gloo otherwise) when there are several processes."""
    dist = Dist(rank=int(os.environ.get("RANK", "0")), world=int(os.environ.get("WORLD_SIZE", "1")),
                local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    device = parse_device(device_arg, dist.local_rank, dist.world)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if dist.on and not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist, device


def shutdown() -> None:
    """Leave the process group, if this process joined one."""
    if tdist.is_available() and tdist.is_initialized():
        tdist.destroy_process_group()


def all_sum(values: Sequence[float], dist: Dist, device) -> List[float]:
    """The element-wise sum of ``values`` over all processes (float64)."""
    if not dist.on:
        return list(values)
    t = torch.tensor(list(values), dtype=torch.float64, device=device)
    tdist.all_reduce(t)
    return t.tolist()


def barrier(dist: Dist) -> None:
    if dist.on:
        tdist.barrier()


def broadcast_obj(obj: Any, dist: Dist) -> Any:
    """Rank 0's ``obj`` on every process."""
    if not dist.on:
        return obj
    box = [obj]
    tdist.broadcast_object_list(box, src=0)
    return box[0]


def any_process(flag: bool, dist: Dist) -> bool:
    """True when ``flag`` is true in at least one process (a barrier too)."""
    if not dist.on:
        return bool(flag)
    flags: List[Any] = [None] * dist.world
    tdist.all_gather_object(flags, bool(flag))
    return any(flags)
