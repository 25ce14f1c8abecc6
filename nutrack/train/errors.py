"""The errors that stop training with a message (no torch needed to import them)."""
from __future__ import annotations

from nutrack._cli import UserError

__all__ = ["TrainingError", "NonFiniteLossError"]


class TrainingError(UserError):
    """A configuration or data problem that stops training with a one-line message (exit 2)."""


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite (exit 3: the run itself went wrong, not its input)."""
