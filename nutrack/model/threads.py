"""torch's intra-op thread count, changed for a block of code only.

The association network's tensors are tiny (tens of objects a frame), so torch's thread pool
costs more than it gains: on a busy 2-core machine the learned tracker ran 25x slower with 2
threads than with 1 (2.7 vs 68 frames/s). The thread count is process-wide state, though, and
the rest of the process (a user's model, other torch code) must not inherit our
choice: :func:`torch_threads` sets it for the duration of a block and puts it back.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Optional

import torch

__all__ = ["torch_threads"]


@contextlib.contextmanager
def torch_threads(n: Optional[int]) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (``None``: leave them as they are).
    Setting the count costs well under a microsecond, so it can wrap every call."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
