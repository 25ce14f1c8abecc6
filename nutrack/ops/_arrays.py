"""Array interop and input validation shared by every op.

Inputs may be numpy arrays (or anything `np.asarray` takes), torch tensors on the CPU or a
CUDA device, or cupy arrays. Each op validates its inputs here, hands contiguous float32
buffers to a backend, and returns outputs of the caller's kind on the caller's device.
torch and cupy are never imported by nutrack; an array is recognised by its type's module.
"""
from __future__ import annotations

import functools
import inspect
import sys
from typing import Any, Callable

import numpy as np
from numba import njit

ACCEPTED_FLOAT_DTYPES = ("float32", "float64")


def kind_of(x: Any) -> str:
    """'torch', 'cupy' or 'numpy' (anything else is treated as an array-like for numpy)."""
    if isinstance(x, np.ndarray):  # the common case first: ops run per frame on small arrays
        return "numpy"
    module = type(x).__module__
    if module.startswith("torch") and "torch" in sys.modules and isinstance(x, sys.modules["torch"].Tensor):
        return "torch"
    if module.startswith("cupy"):
        return "cupy"
    return "numpy"


def cuda_device_of(x: Any) -> int | None:
    """The CUDA device index holding x, or None for host memory."""
    kind = kind_of(x)
    if kind == "torch":
        return x.device.index if x.is_cuda else None
    if kind == "cupy":
        return x.device.id
    return None


def device_name(x: Any) -> str:
    device = cuda_device_of(x)
    return "cpu" if device is None else f"cuda:{device}"


def same_device(**arrays: Any) -> int | None:
    """Checks that every array lives on one device (and is of one kind); returns it."""
    items = [(name, a) for name, a in arrays.items() if a is not None]
    first_name, first = items[0]
    for name, a in items[1:]:
        if (kind_of(a), cuda_device_of(a)) != (kind_of(first), cuda_device_of(first)):
            raise ValueError(
                f"{name} is a {kind_of(a)} array on {device_name(a)} but {first_name} is a "
                f"{kind_of(first)} array on {device_name(first)}; put them on one device")
    return cuda_device_of(first)


def _dtype_name(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return x.dtype.name
    return str(x.dtype).replace("torch.", "")


def as_float32(x: Any, name: str, *, ndim: int, width: int | None = None,
               min_width: int | None = None, last_dims: tuple | None = None) -> Any:
    """Validates rank, width and dtype; returns a C-contiguous float32 array of the same kind."""
    kind = kind_of(x)
    if kind == "numpy" and not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}")
    if width is not None and x.shape[-1] != width:
        raise ValueError(f"{name} must have shape (..., {width}), got {tuple(x.shape)}")
    if min_width is not None and x.shape[-1] < min_width:
        raise ValueError(f"{name} must have at least {min_width} columns, got shape {tuple(x.shape)}")
    if last_dims is not None and tuple(x.shape[-len(last_dims):]) != last_dims:
        raise ValueError(f"{name} must have shape (..., {', '.join(map(str, last_dims))}), got {tuple(x.shape)}")
    if _dtype_name(x) not in ACCEPTED_FLOAT_DTYPES:
        raise ValueError(f"{name} has unsupported dtype {_dtype_name(x)}; use float32 or float64")
    if kind == "torch":
        return x.detach().to(dtype=sys.modules["torch"].float32).contiguous()
    if kind == "cupy":
        return sys.modules["cupy"].ascontiguousarray(x, dtype="float32")
    return np.ascontiguousarray(x, dtype=np.float32)


def _all_true(mask: Any) -> bool:
    return bool(mask.all().item()) if kind_of(mask) != "numpy" else bool(mask.all())


@njit(cache=True, nogil=True)
def _rows_finite(x: np.ndarray, columns: int) -> bool:
    """Whether the first `columns` values of every row of a 2-D float array are finite: one
    pass, no temporary, stopping at the first bad row (numpy's isfinite(x).all() writes a bool
    array first: 3x slower on a 300k-point cloud). abs(v) < inf is False for NaN and +-inf."""
    for i in range(x.shape[0]):
        finite = True
        for k in range(columns):
            finite &= abs(x[i, k]) < np.inf
        if not finite:
            return False
    return True


def check_finite(x: Any, name: str, columns: int | None = None) -> None:
    """ValueError naming `name` unless every value of `x` (of its first `columns` columns, for
    a 2-D array) is finite."""
    kind = kind_of(x)
    if kind == "numpy" and x.ndim == 2 and x.dtype in (np.float32, np.float64):
        finite = _rows_finite(x, x.shape[1] if columns is None else min(columns, x.shape[1]))
    else:
        if columns is not None:
            x = x[:, :columns]
        isfinite = sys.modules["torch"].isfinite if kind == "torch" else (
            sys.modules["cupy"].isfinite if kind == "cupy" else np.isfinite)
        finite = _all_true(isfinite(x))
    if not finite:
        raise ValueError(f"{name} contains NaN or infinite values")


def check_positive(x: Any, name: str) -> None:
    if not _all_true(x > 0):
        raise ValueError(f"{name} must be > 0 everywhere")


def check_flag(value: Any, name: str, allow_none: bool = False) -> bool | None:
    """A bool argument as a bool: "yes", 1 or an array are errors, not truthy values."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"{name} must be True or False{' or None' if allow_none else ''}, "
                     f"got {value!r}")


def free_bytes(like: Any) -> int | None:
    """Bytes that can still be allocated beside `like` (free device memory plus what the
    framework's caching allocator holds unused, for CUDA arrays; MemAvailable for host
    memory), or None where the platform does not say."""
    device = cuda_device_of(like)
    if device is not None:
        if kind_of(like) == "torch":
            cuda = sys.modules["torch"].cuda
            cached = cuda.memory_reserved(device) - cuda.memory_allocated(device)
            return int(cuda.mem_get_info(device)[0]) + int(cached)
        cupy = sys.modules["cupy"]
        with cupy.cuda.Device(device):
            cached = cupy.get_default_memory_pool().free_bytes()
            return int(cupy.cuda.runtime.memGetInfo()[0]) + int(cached)
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def empty(like: Any, shape: tuple, dtype: str) -> Any:
    """An uninitialised array of `dtype` ('float32', 'int32', 'int64', 'bool') beside `like`."""
    kind = kind_of(like)
    if kind == "torch":
        torch = sys.modules["torch"]
        return torch.empty(shape, dtype=getattr(torch, dtype), device=like.device)
    if kind == "cupy":
        cupy = sys.modules["cupy"]
        with cupy.cuda.Device(like.device.id):
            return cupy.empty(shape, dtype=dtype)
    return np.empty(shape, dtype=dtype)


def address(x: Any) -> int:
    if isinstance(x, np.ndarray):
        return x.ctypes.data
    kind = kind_of(x)
    if kind == "torch":
        return x.data_ptr()
    if kind == "cupy":
        return x.data.ptr
    return x.ctypes.data


def current_stream(like: Any) -> int:
    """The caller's current CUDA stream on like's device, as an integer handle."""
    if kind_of(like) == "torch":
        return sys.modules["torch"].cuda.current_stream(like.device).cuda_stream
    cupy = sys.modules["cupy"]
    with cupy.cuda.Device(like.device.id):
        return cupy.cuda.get_current_stream().ptr


def to_host(x: Any) -> np.ndarray:
    kind = kind_of(x)
    if kind == "torch":
        return x.detach().cpu().numpy()
    if kind == "cupy":
        return x.get()
    return np.asarray(x)


def from_host(array: np.ndarray, like: Any) -> Any:
    """`array` as an array of like's kind on like's device."""
    kind = kind_of(like)
    if kind == "torch":
        return sys.modules["torch"].from_numpy(np.ascontiguousarray(array)).to(like.device)
    if kind == "cupy":
        cupy = sys.modules["cupy"]
        with cupy.cuda.Device(like.device.id):
            return cupy.asarray(array)
    return array


def exclusive_cumsum(counts: Any) -> tuple[Any, int]:
    """(offsets, total) for an int64 count vector, computed where the counts live."""
    kind = kind_of(counts)
    if kind == "torch":
        inclusive = counts.cumsum(0)
    elif kind == "cupy":
        inclusive = sys.modules["cupy"].cumsum(counts)
    else:
        inclusive = np.cumsum(counts)
    total = int(inclusive[-1].item()) if len(counts) else 0
    return inclusive - counts, total


def on_input_device(op: Callable) -> Callable:
    """Runs a public op with cupy's current device set to its first array's device.

    cupy allocates and computes on its *current* device, not the array's; torch follows the
    tensors. Without this, cupy inputs on a device other than the current one would get box
    frames, offsets and outputs on the wrong GPU. The first argument may be a list of arrays.
    """
    first_name = next(iter(inspect.signature(op).parameters))

    @functools.wraps(op)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        first = args[0] if args else kwargs.get(first_name)
        probe = first[0] if isinstance(first, (list, tuple)) and len(first) else first
        if kind_of(probe) == "cupy":
            with sys.modules["cupy"].cuda.Device(probe.device.id):
                return op(*args, **kwargs)
        return op(*args, **kwargs)

    return wrapper
