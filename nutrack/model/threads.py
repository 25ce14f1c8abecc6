"""torch's intra-op thread count and the BLAS's, changed for a block of code only.

The association network's tensors are tiny (tens of objects a frame), so torch's thread pool
costs more than it gains: on a busy 2-core machine the learned tracker ran 25x slower with 2
threads than with 1 (2.7 vs 68 frames/s). The thread count is process-wide state, though, and
the rest of the process (a user's model, other torch code) must not inherit our
choice: :func:`torch_threads` sets it for the duration of a block and puts it back.

The numba engine (:mod:`nutrack.model.numba_net`) calls the BLAS SciPy brings (OpenBLAS), whose
own threads start on products of a few hundred rows: on the learned tracker they doubled the
CPU time for a 1.6x shorter wall time and would compete with everything else on the machine.
:func:`blas_threads` caps them the same way, through threadpoolctl.
"""
from __future__ import annotations

import contextlib
import importlib
import os
from typing import Iterator, Optional

import torch

__all__ = ["torch_threads", "blas_threads"]


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


_blas = None  # the BLAS libraries threadpoolctl found, once


def _blas_controllers():
    global _blas
    if _blas is None:
        importlib.import_module("scipy.linalg.cython_blas")  # loads the BLAS numba's np.dot calls
        from threadpoolctl import ThreadpoolController

        libs = ThreadpoolController().select(user_api="blas").lib_controllers
        # the one numba's np.dot calls when SciPy brings its own (numpy's stays the user's)
        scipy_own = [lib for lib in libs if "scipy" in os.path.basename(os.path.dirname(lib.filepath))
                     or "scipy" in os.path.basename(lib.filepath)]
        _blas = scipy_own or libs
    return _blas


@contextlib.contextmanager
def blas_threads(n: Optional[int]) -> Iterator[None]:
    """Run the block with ``n`` threads in the BLAS numba's ``np.dot`` calls (SciPy's own when it
    brings one, else every BLAS loaded; ``None``: leave them as they are); a few ctypes calls a
    block."""
    if n is None:
        yield
        return
    changed = []
    for lib in _blas_controllers():
        before = lib.num_threads
        if before != n:
            lib.set_num_threads(int(n))
            changed.append((lib, before))
    try:
        yield
    finally:
        for lib, before in changed:
            lib.set_num_threads(before)
