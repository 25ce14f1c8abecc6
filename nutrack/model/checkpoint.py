"""Reading the checkpoints ``python -m nutrack.train`` writes, with one-line errors.

A checkpoint is a ``torch.save`` dict: ``format`` (:data:`CHECKPOINT_FORMAT`), ``model`` (the
network's state dict), ``model_config`` (:class:`ModelConfig` as a dict), ``data``
(``nsweeps``), optionally ``confidence`` (the track-confidence head: ``{"config", "state"}``,
see :mod:`nutrack.model.confidence`) and, for resuming, ``optimizer``, ``train_state``, ``rng`` and ``config``.

Everything a user can hand us as ``--checkpoint`` or ``--resume`` (random bytes, a JSON file,
a truncated download, another program's pickle, a state dict of another width) ends in a
:class:`CheckpointError` naming the file and what is wrong with it, never in a traceback.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Tuple

import torch

from nutrack._cli import UserError
from nutrack.model.network import AssociationNet, ModelConfig

__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "read_checkpoint", "model_from_checkpoint", "load_model",
           "confidence_from_checkpoint"]

CHECKPOINT_FORMAT = "nutrack.model/1"

#: what every checkpoint holds; resuming needs :data:`TRAINING_KEYS` as well
MODEL_KEYS = ("model", "model_config")
TRAINING_KEYS = ("optimizer", "train_state", "rng", "config")


class CheckpointError(UserError, ValueError):
    """A checkpoint file that cannot be used; the message names the file and the fault.

    A ValueError too, so that callers which report bad arguments as ValueError (the tracker
    factory) report it the same way."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def read_checkpoint(path: str, what: str = "--checkpoint", training: bool = False) -> Dict[str, Any]:
    """The checkpoint dict at ``path``, checked to be a nutrack.train checkpoint (with the
    training state too when ``training``). ``what`` names the option in messages."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{what} {path!r}: no such file")
    try:
        # weights_only=False: the checkpoint holds numpy / python RNG states, which the
        # weights-only unpickler refuses. Load only checkpoints you trust.
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - whatever the unpickler trips on, the file is at fault
        raise CheckpointError(f"{what} {path!r}: not a readable PyTorch checkpoint "
                              f"(truncated or another kind of file? {_first_line(e)})") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{what} {path!r}: not a nutrack.train checkpoint "
                              f"(no format {CHECKPOINT_FORMAT!r} in it)")
    missing = [k for k in MODEL_KEYS + (TRAINING_KEYS if training else ()) if k not in ck]
    if missing:
        raise CheckpointError(f"{what} {path!r}: incomplete nutrack.train checkpoint (no {', '.join(missing)})")
    return ck


def model_from_checkpoint(ck: Dict[str, Any], path: str, what: str = "--checkpoint") -> AssociationNet:
    """The network a :func:`read_checkpoint` dict describes, with its weights, on the CPU."""
    try:
        config = ModelConfig.from_dict(ck["model_config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{what} {path!r}: invalid model_config ({e})") from None
    model = AssociationNet(config)
    try:
        model.load_state_dict(ck["model"])
    except (RuntimeError, TypeError, AttributeError) as e:
        # load_state_dict lists every mismatching tensor; the first names the fault well enough
        detail = " ".join(str(e).split("\n\t")[1:2]).strip() or _first_line(e)
        raise CheckpointError(f"{what} {path!r}: its weights do not fit the network "
                              f"(hidden={config.hidden}, use_points={config.use_points}): {detail}") from None
    return model


def load_model(checkpoint: str, device="cpu") -> Tuple[AssociationNet, Dict[str, Any]]:
    """``(AssociationNet in eval mode on device, checkpoint dict)`` from a checkpoint written
    by ``nutrack.train``; raises :class:`CheckpointError` for an unusable file."""
    ck = read_checkpoint(checkpoint)
    model = model_from_checkpoint(ck, checkpoint)
    return model.to(device).eval(), ck


def confidence_from_checkpoint(ck: Dict[str, Any], path: str, what: str = "--checkpoint"):
    """The checkpoint's track-confidence head (:class:`nutrack.model.confidence.ConfidenceNet`,
    eval mode, CPU), or None when it has none."""
    from nutrack.model.confidence import ConfidenceConfig, ConfidenceNet

    entry = ck.get("confidence")
    if entry is None:
        return None
    try:
        net = ConfidenceNet(ConfidenceConfig.from_dict(entry["config"]))
        net.load_state_dict(entry["state"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
        raise CheckpointError(f"{what} {path!r}: unusable confidence head ({_first_line(e)})") from None
    return net.eval()
