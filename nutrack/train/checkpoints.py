"""Training checkpoints: written whole or not at all, and everything a bit-identical resume
needs (model, optimiser, the python / numpy / torch RNG states, the position in the run).

The format is :mod:`nutrack.model.checkpoint`'s (the tracker reads the same files); reading one
back for ``--resume`` goes through its :func:`~nutrack.model.checkpoint.read_checkpoint`, so a
file that is not a usable checkpoint ends in a one-line error.
"""
from __future__ import annotations

import contextlib
import random
from typing import Any, Dict

import numpy as np
import torch

from nutrack._io import atomic_write_with
from nutrack.model.checkpoint import CHECKPOINT_FORMAT, read_checkpoint

__all__ = ["rng_state", "set_rng_state", "save_checkpoint", "read_training_checkpoint", "seed_everything"]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> Dict[str, Any]:
    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: Dict[str, Any]) -> None:
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        # a checkpoint from a machine with another number of GPUs: the CPU states still hold
        with contextlib.suppress(Exception):
            torch.cuda.set_rng_state_all(st["cuda"])


def save_checkpoint(path: str, **content: Any) -> None:
    """``torch.save`` of ``{format, **content}`` to ``path``, atomically (see :mod:`nutrack._io`)."""
    obj = {"format": CHECKPOINT_FORMAT, **content}
    atomic_write_with(path, lambda f: torch.save(obj, f))


def read_training_checkpoint(path: str) -> Dict[str, Any]:
    """The checkpoint at ``path`` with its training state, for ``--resume``."""
    return read_checkpoint(path, what="--resume", training=True)
