"""Atomic file writing: the one write-then-rename every nutrack output goes through.

A temporary file in the target's folder is written, flushed and fsynced, renamed over the
target, and the folder fsynced so that the rename survives a power cut. On any error the
target is untouched and the temporary file removed, so a failed or killed run never leaves a
half-written output (and never a stray temporary file, except on SIGKILL; those are named
``.<target>.*.tmp`` so that they are easy to spot).
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Any, BinaryIO, Callable, Iterator, Union

try:  # optional, faster, and serialises numpy arrays and scalars
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised only without orjson
    _orjson = None

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_with", "atomic_write_json", "json_bytes",
           "fsync_dir"]

PathLike = Union[str, os.PathLike]


def fsync_dir(folder: PathLike) -> None:
    """fsync a folder (makes a rename in it durable); a no-op where folders cannot be opened."""
    with contextlib.suppress(OSError):
        fd = os.open(os.fspath(folder), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: int = 0o644) -> Iterator[BinaryIO]:
    """``with atomic_write(p) as f: f.write(...)`` — ``p`` appears whole or not at all."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(error, OSError) and error.errno is not None and error.filename is None:
            # write()/fsync() errors (ENOSPC, EIO) carry no file name: name the target, so that
            # "no space left on the device writing <path>" says which output failed.
            raise OSError(error.errno, error.strerror or os.strerror(error.errno), path) from error
        raise
    fsync_dir(folder)


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path) as f:
        f.write(data)


def atomic_write_with(path: PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Atomically write what ``write(file)`` writes, e.g. ``lambda f: torch.save(obj, f)``."""
    with atomic_write(path) as f:
        write(f)


def json_bytes(obj: Any, indent: bool = False) -> bytes:
    """``obj`` as JSON (orjson when present: numpy arrays and scalars allowed; no NaN/inf)."""
    if _orjson is not None:
        opt = _orjson.OPT_SERIALIZE_NUMPY | (_orjson.OPT_INDENT_2 if indent else 0)
        return _orjson.dumps(obj, option=opt)
    return json.dumps(obj, indent=2 if indent else None, allow_nan=False).encode()


def atomic_write_json(path: PathLike, obj: Any, indent: bool = False) -> None:
    """Serialise ``obj`` (see :func:`json_bytes`) and write it atomically."""
    atomic_write_bytes(path, json_bytes(obj, indent=indent))
