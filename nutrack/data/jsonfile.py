"""Reading JSON input files: a size cap, one-line errors naming the file, no silently lost keys.

JSON is parsed with ``orjson`` when it is installed (about 2.5x faster than the standard
library on large files), with Python's garbage collector paused during the parse. The standard
library is the fallback for what orjson refuses (the ``NaN``/``Infinity`` tokens Python's
``json`` writes, which validation then reports by field) and the precise path for repeated keys.

Both parsers keep only the LAST of two equal keys in an object, so a detection file listing a
sample twice (the second time with ``[]``) would lose that sample's boxes without a word.
:func:`may_have_repeated_keys` is a cheap test (one regular-expression scan of the bytes, a few
per cent of the parse) that a parsed table of lists lost nothing; when it cannot vouch for the
table, :func:`parse_json_strict` re-parses with a hook that records every repeated key.
"""
from __future__ import annotations

import contextlib
import gc
import json
import os
import re
import stat
from typing import Any, Iterator, List, Optional, Tuple, Union

from nutrack._cli import UserError

try:  # optional, faster
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised only without orjson
    _orjson = None

__all__ = ["JSONFileError", "DEFAULT_MAX_JSON_BYTES", "MAX_JSON_BYTES_ENV", "read_json", "read_json_bytes",
           "parse_json", "parse_json_strict", "may_have_repeated_keys", "gc_paused"]

#: Input files larger than this are refused before reading (parsed JSON takes about five times
#: its size in memory). 8 GiB is well above the largest real submission: the trainval train
#: split at the 500-box limit is about 5 GB.
DEFAULT_MAX_JSON_BYTES = 8 * 2 ** 30
#: Environment variable overriding :data:`DEFAULT_MAX_JSON_BYTES` (a number of bytes).
MAX_JSON_BYTES_ENV = "NUTRACK_MAX_JSON_BYTES"

PathLike = Union[str, os.PathLike]
Repeated = List[Tuple[str, dict]]


class JSONFileError(UserError, ValueError):
    """A file that cannot be read as JSON. ``reason`` is the message without the path, for
    callers that name the file their own way."""

    def __init__(self, path: PathLike, reason: str):
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No garbage collection inside: millions of fresh JSON objects would only cost time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _byte_limit(path: PathLike, max_bytes: Optional[int]) -> int:
    if max_bytes is not None:
        return int(max_bytes)
    text = os.environ.get(MAX_JSON_BYTES_ENV)
    if text is None:
        return DEFAULT_MAX_JSON_BYTES
    try:
        return int(float(text))
    except ValueError:
        raise JSONFileError(path, f"{MAX_JSON_BYTES_ENV}={text!r} is not a number of bytes") from None


def read_json_bytes(path: PathLike, max_bytes: Optional[int] = None) -> bytes:
    """The file's bytes, refusing files above the cap (``max_bytes``, else the environment's
    ``NUTRACK_MAX_JSON_BYTES``, else 8 GiB). FileNotFoundError for a missing file."""
    limit = _byte_limit(path, max_bytes)
    info = os.stat(path)
    if stat.S_ISDIR(info.st_mode):
        raise JSONFileError(path, "is a folder, not a JSON file")
    if not stat.S_ISREG(info.st_mode):  # a FIFO or a device (/dev/zero) has no size to cap
        raise JSONFileError(path, "is not a regular file")
    size = info.st_size

    def too_big(n: int) -> JSONFileError:
        return JSONFileError(path, f"{n} bytes, more than the {limit} bytes allowed (pass max_bytes= or set "
                                   f"{MAX_JSON_BYTES_ENV} to raise the cap)")

    if size > limit:
        raise too_big(size)
    with open(path, "rb") as f:
        raw = f.read(limit + 1)
    if len(raw) > limit:  # it grew since the stat
        raise too_big(len(raw))
    return raw


def parse_json_strict(raw: bytes, path: PathLike) -> Tuple[Any, Repeated]:
    """Parse with the standard library; also return ``[(key, object), ...]`` for every key
    that appeared more than once in one object (``object`` is the parsed dict holding it)."""
    repeated: Repeated = []

    def pairs(items):
        obj = dict(items)
        if len(obj) != len(items):
            seen = set()
            for key, _ in items:
                if key in seen:
                    repeated.append((key, obj))
                seen.add(key)
        return obj

    try:
        text = raw.decode("utf-8-sig")  # JSON files are UTF-8 (RFC 8259); a BOM is tolerated
    except UnicodeDecodeError as e:
        raise JSONFileError(path, f"not valid UTF-8 text (byte {e.start}: {e.reason})") from None
    try:
        with gc_paused():
            return json.loads(text, object_pairs_hook=pairs), repeated
    except RecursionError:
        raise JSONFileError(path, "not a submission file: arrays or objects nested too deeply to parse") from None
    except json.JSONDecodeError as e:
        raise JSONFileError(path, f"not valid JSON: {e}") from None


def parse_json(raw: bytes, path: PathLike) -> Tuple[Any, Optional[Repeated]]:
    """``(value, None)`` from orjson (repeated keys unchecked); where orjson refuses the
    bytes, the standard library's ``(value, repeated)`` (see :func:`parse_json_strict`)."""
    if _orjson is not None:
        try:
            with gc_paused():
                return _orjson.loads(raw), None
        except _orjson.JSONDecodeError:
            pass  # maybe NaN/Infinity tokens, which only the standard library accepts
    return parse_json_strict(raw, path)


def read_json(path: PathLike, max_bytes: Optional[int] = None) -> Any:
    """Parse a JSON file fast (see :func:`parse_json`), within the size cap."""
    return parse_json(read_json_bytes(path, max_bytes), path)[0]


# ``"key": []`` or ``"key": [{`` -- how every sample of a submission file begins; box fields
# (lists of numbers) do not match, so the scan finds about one match per sample.
_LIST_OF_OBJECTS_OR_EMPTY = re.compile(rb":\s*\[\s*[\]{]")


def may_have_repeated_keys(raw: bytes, table: dict) -> bool:
    """False when ``table`` -- a dict of lists parsed from ``raw`` -- provably lost no entry
    to a repeated key: the bytes hold exactly as many ``"key": [`` openings of an empty list
    or a list of objects as the table has such values. Anything else (a repeated key, or such
    lists elsewhere in the file) answers True, and the caller re-parses precisely."""
    expected = sum(1 for v in table.values() if isinstance(v, list) and (not v or isinstance(v[0], dict)))
    return sum(1 for _ in _LIST_OF_OBJECTS_OR_EMPTY.finditer(raw)) != expected
