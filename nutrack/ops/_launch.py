"""One call of a kernel on the backend chosen for it.

Each op has ONE table from backend to launcher (`launchers`): the numba twin, and the native
launcher `<name>_cpu` / `<name>_cuda` of nutrack._C (the cuda_emu backend of the tests runs the
same `<name>_cuda` launcher out of its emulated module). Launchers are called with keyword
arguments only, and the host launchers (cpu, numba) take exactly the same ones, as do the
device launchers (cuda, cuda_emu); the device ones add `device` and `stream`, and differ from
the host ones only where an op's host algorithm takes more (the box grid of the points ops).

Arrays go to a numba twin as they are; to a native launcher as addresses, where None or an
empty array is the null address (a launcher never reads an empty array: "no classes", "one
cloud"). The numba and cpu backends work on host memory: device inputs (when the caller
forces one of them) are copied to the host and the results copied back. The cuda backend
works on the caller's device and current stream. cuda_emu works on host memory and waits for
its kernels after each launcher (there the caller reads the outputs directly).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Union

import numpy as np

from nutrack.ops import _arrays, _backend

# backend -> the numba twin (a callable) or the name of a native launcher
Launchers = Dict[str, Union[Callable, str]]


def launchers(numba: Callable, native: str) -> Launchers:
    """The table of one op: `numba` for the numba backend, `native`_cpu / `native`_cuda."""
    return {"numba": numba, "cpu": f"{native}_cpu", "cuda": f"{native}_cuda",
            "cuda_emu": f"{native}_cuda"}


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) or _arrays.kind_of(x) != "numpy"


def _native_value(x: Any) -> Any:
    if x is None:
        return 0
    if _is_array(x):
        return 0 if x.shape and min(x.shape) == 0 else _arrays.address(x)
    return x


class Launch:
    def __init__(self, which: str, like: Any) -> None:
        self.which = which
        self.like = like
        self.on_host = which != "cuda"  # where the launcher's arrays live
        self.on_device = which in ("cuda", "cuda_emu")  # whether it runs the CUDA launchers

    def input(self, x: Any) -> Any:
        return _arrays.to_host(x) if self.on_host else x

    def empty(self, shape: tuple, dtype: str) -> Any:
        return np.empty(shape, dtype=dtype) if self.on_host else _arrays.empty(self.like, shape, dtype)

    def device(self) -> int:
        """The CUDA device ordinal the device launchers run on (0 for cuda_emu)."""
        return 0 if self.which == "cuda_emu" else _arrays.cuda_device_of(self.like)

    def run(self, table: Launchers, **args: Any) -> Any:
        """Calls this backend's launcher from `table` with `args`, by name."""
        launcher = table[self.which]
        if callable(launcher):
            return launcher(**args)
        module = _backend.module_for(self.which)
        native = getattr(module, launcher)
        args = {name: _native_value(value) for name, value in args.items()}
        if self.which == "cuda":
            return native(**args, device=self.device(), stream=_arrays.current_stream(self.like))
        if self.which == "cuda_emu":
            result = native(**args, device=0, stream=0)
            module.synchronize_cuda(device=0)
            return result
        return native(**args)

    def exclusive_cumsum(self, counts: Any) -> tuple[Any, int]:
        return _arrays.exclusive_cumsum(counts)

    def output(self, x: Any) -> Any:
        return _arrays.from_host(x, self.like) if self.on_host else x
