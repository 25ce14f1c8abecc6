"""What every `python -m nutrack.<command>` shares: one-line errors, exit code 2, and output
paths checked before the work.

A user mistake (a malformed file, a bad argument, an unwritable folder, a full disk) must end
in ONE line on stderr naming what is wrong, exit code 2, and no output file — never a
traceback. Commands raise :class:`UserError` (or a subclass) for such mistakes and wrap their
``main`` with :func:`run_main`, which turns the known failure kinds into that line.
"""
from __future__ import annotations

import argparse
import errno
import os
import sys
import tempfile
from typing import Callable, Optional, Sequence

__all__ = ["UserError", "ArgumentParser", "run_main", "check_writable_file", "check_writable_dir"]


class UserError(Exception):
    """A mistake of the caller's (input, argument, environment), reported in one line."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose errors are one line too (argparse prints the usage first):
    ``<prog>: error: <message> (see --help)``, exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see --help)\n")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


# Write errors of a full or read-only disk: the environment's fault, never nutrack's.
_FULL = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
         errno.EROFS: "read-only file system", errno.EFBIG: "file too large for the file system"}


def _describe(error: BaseException) -> Optional[str]:
    """The one-line message for an error the user can act on; None for a real bug."""
    if isinstance(error, UserError):
        return _one_line(error)
    if isinstance(error, OSError) and error.errno in _FULL:
        where = f" writing {error.filename}" if error.filename else ""
        return f"{_FULL[error.errno]}{where}"
    if isinstance(error, (PermissionError, IsADirectoryError, NotADirectoryError, FileNotFoundError)):
        return _one_line(error)
    if isinstance(error, MemoryError):
        return "out of memory (the input is too large for this machine)"
    return None


def run_main(prog: str, main: Callable[[Optional[Sequence[str]]], int],
             argv: Optional[Sequence[str]] = None) -> int:
    """Run ``main(argv)``; user errors become ``<prog>: error: <one line>`` and exit code 2.
    Anything else is a bug in nutrack and keeps its traceback."""
    try:
        return int(main(argv) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - sorted into user errors and bugs below
        message = _describe(error)
        if message is None:
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2


def _check_folder(folder: str, what: str, shown: str) -> None:
    """``folder`` exists as a writable folder or can be created: its nearest existing ancestor
    is a folder we may write into. Errors name ``what`` and the path the user gave (``shown``)."""
    probe = folder
    while not os.path.exists(probe):  # the nearest existing ancestor decides
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise UserError(f"{what} {shown!r}: {probe!r} is a file, not a folder")
    # os.access also answers False on a read-only mount, for root too.
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"{what} {shown!r}: no permission to write in {probe!r}")
    # ... but not for file systems that refuse files anyway (/proc, /sys, some network mounts):
    # a probe file, removed at once, is the only sure answer.
    try:
        fd, name = tempfile.mkstemp(prefix=".nutrack-probe-", dir=probe)
    except OSError as e:
        raise UserError(f"{what} {shown!r}: cannot create files in {probe!r} ({e.strerror})") from None
    os.close(fd)
    os.unlink(name)


def check_writable_dir(path: str, what: str) -> str:
    """``path`` is, or can be created as, a folder we may write into; raises UserError
    naming ``what`` (e.g. '--output') otherwise. Creates nothing (a probe file in the nearest
    existing folder is removed at once). Returns the absolute path."""
    path = os.path.abspath(path)
    _check_folder(path, what, path)
    return path


def check_writable_file(path: str, what: str) -> str:
    """``path`` names a file we can create or replace (its folder may not exist yet)."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        raise UserError(f"{what} {path!r} is a folder; give a file name")
    _check_folder(os.path.dirname(path), what, path)
    return path
