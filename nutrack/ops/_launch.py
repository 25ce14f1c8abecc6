"""One call of a kernel on the backend chosen for it.

The numba and cpu backends work on host memory: device inputs (when the caller forces one of
them) are copied to the host and the results copied back. The cuda backend works on the
caller's device and current stream. Native launchers are named `<op>_cpu` / `<op>_cuda` in
nutrack._C and take array addresses, sizes and scalars (plus device and stream for CUDA).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from nutrack.ops import _arrays, _backend


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) or _arrays.kind_of(x) != "numpy"


class Launch:
    def __init__(self, which: str, like: Any) -> None:
        self.which = which
        self.like = like
        self.on_host = which != "cuda"

    def input(self, x: Any) -> Any:
        return _arrays.to_host(x) if self.on_host else x

    def empty(self, shape: tuple, dtype: str) -> Any:
        return np.empty(shape, dtype=dtype) if self.on_host else _arrays.empty(self.like, shape, dtype)

    def native(self, op: str, *args: Any) -> None:
        launcher = getattr(_backend.native, f"{op}_{self.which}")
        args = tuple(_arrays.address(a) if _is_array(a) else a for a in args)
        if self.which == "cuda":
            launcher(*args, _arrays.cuda_device_of(self.like), _arrays.current_stream(self.like))
        else:
            launcher(*args)

    def exclusive_cumsum(self, counts: Any) -> tuple[Any, int]:
        return _arrays.exclusive_cumsum(counts)

    def output(self, x: Any) -> Any:
        return _arrays.from_host(x, self.like) if self.on_host else x
