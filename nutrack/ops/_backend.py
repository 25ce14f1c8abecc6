"""Which backends exist, and which one a call uses.

`nutrack._C` holds the C++ (and, when compiled with it, CUDA) kernels. When it is missing or
fails to import, every op still works on the numba backend, and the first op that falls back
says why, once, in one line.

`cuda_emu` is the tests' backend: the CUDA launchers of csrc/*_cuda.cu compiled with g++
against HIP-CPU, whose kernels run on the CPU over host arrays. tests/cuda_emu.py builds that
module and registers it here (`register_emulated`); no installed nutrack ever has it.

Threads: nutrack changes no process-wide setting at import. The C++ launchers decide their
threads on every call from the work's size, the CPUs the process may run on now
(sched_getaffinity), the cgroup's CPU quota and OMP_NUM_THREADS, and run them as threads started for the call, not
OpenMP (csrc/threads.h; README, "Threads"). The numba twins are single-threaded.
"""
from __future__ import annotations

import warnings
from types import ModuleType

BACKENDS = ("auto", "cuda", "cpu", "numba", "cuda_emu")

try:
    from nutrack import _C as native
except Exception as error:  # ImportError, or OSError from a broken build
    native = None
    _why_unavailable = f"{type(error).__name__}: {error}"
else:
    _why_unavailable = None

_warned = False
emulated: ModuleType | None = None  # the cuda_emu module, when the tests registered one


def register_emulated(module: ModuleType | None) -> None:
    """Makes `module` (built by tests/cuda_emu.py) the cuda_emu backend; None removes it."""
    global emulated
    if module is not None and not getattr(module, "emulated", False):
        raise ValueError(f"{module!r} is not an emulated nutrack module")
    emulated = module


def module_for(which: str) -> ModuleType:
    """The native module whose launchers run backend `which` ('cpu', 'cuda' or 'cuda_emu')."""
    return emulated if which == "cuda_emu" else native


class NativeBackendUnavailable(UserWarning):
    """The compiled extension could not be loaded; the numba backend is used instead."""


def has_cpu() -> bool:
    return native is not None


def has_cuda() -> bool:
    return native is not None and bool(native.with_cuda)


def why_unavailable() -> str | None:
    """Why nutrack._C failed to import (None when it imported)."""
    return _why_unavailable


def _fallback_notice(reason: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(f"nutrack.ops: {reason}; using the numba backend", NativeBackendUnavailable,
                      stacklevel=4)


def resolve(backend: str, on_cuda: bool) -> str:
    """The backend a call runs on: 'cuda', 'cpu', 'numba' (or the tests' 'cuda_emu')."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        if on_cuda:
            if has_cuda():
                return "cuda"
            _fallback_notice("the CUDA backend is not built (" + (
                _why_unavailable or "nutrack._C was compiled without CUDA") + ")")
            return "numba"
        if has_cpu():
            return "cpu"
        _fallback_notice(f"the native extension nutrack._C is unavailable ({_why_unavailable})")
        return "numba"
    if backend == "cuda":
        if not on_cuda:
            raise ValueError("backend='cuda' needs inputs on a CUDA device (torch or cupy arrays)")
        if not has_cuda():
            raise ValueError("backend='cuda' requested but nutrack._C was built without CUDA"
                             + (f" ({_why_unavailable})" if _why_unavailable else ""))
    if backend == "cuda_emu":
        if on_cuda:
            raise ValueError("backend='cuda_emu' runs on host arrays (numpy or CPU torch), not on "
                             "a CUDA device")
        if emulated is None:
            raise ValueError("backend='cuda_emu' is the tests' emulated CUDA backend "
                             "(tests/cuda_emu.py); none is registered in this process")
    if backend == "cpu" and not has_cpu():
        raise ValueError(f"backend='cpu' requested but nutrack._C is unavailable ({_why_unavailable})")
    return backend
