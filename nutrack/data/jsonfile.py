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

A parsed file takes 5-8 times its size in Python objects; for large files :func:`scan_events`
and :func:`object_members` find the byte ranges of the top-level members and of the samples
of ``results`` without parsing them, so that a caller parses one piece at a time
(:func:`loads_piece`; see ``_read_frames_piecewise`` in :mod:`nutrack.data.detections`).
"""
from __future__ import annotations

import contextlib
import gc
import json
import os
import re
import stat
from typing import Any, Iterator, List, Optional, Tuple, Union

import numpy as np

from nutrack._cli import UserError

try:  # optional, faster
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised only without orjson
    _orjson = None

__all__ = ["JSONFileError", "DEFAULT_MAX_JSON_BYTES", "MAX_JSON_BYTES_ENV", "read_json", "read_json_bytes",
           "checked_size", "parse_json", "parse_json_strict", "may_have_repeated_keys", "gc_paused",
           "NotPieceable", "scan_events", "object_members", "document_members", "read_range", "loads_piece"]

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


def _too_big(path: PathLike, n: int, limit: int) -> JSONFileError:
    return JSONFileError(path, f"{n} bytes, more than the {limit} bytes allowed (pass max_bytes= or set "
                               f"{MAX_JSON_BYTES_ENV} to raise the cap)")


def checked_size(path: PathLike, max_bytes: Optional[int] = None) -> Tuple[int, int]:
    """``(size, limit)`` of a regular file within the cap (``max_bytes``, else the
    environment's ``NUTRACK_MAX_JSON_BYTES``, else 8 GiB); JSONFileError otherwise,
    FileNotFoundError for a missing file."""
    limit = _byte_limit(path, max_bytes)
    info = os.stat(path)
    if stat.S_ISDIR(info.st_mode):
        raise JSONFileError(path, "is a folder, not a JSON file")
    if not stat.S_ISREG(info.st_mode):  # a FIFO or a device (/dev/zero) has no size to cap
        raise JSONFileError(path, "is not a regular file")
    if info.st_size > limit:
        raise _too_big(path, info.st_size, limit)
    return info.st_size, limit


def read_json_bytes(path: PathLike, max_bytes: Optional[int] = None) -> bytes:
    """The file's bytes, refusing files above the cap (see :func:`checked_size`)."""
    _, limit = checked_size(path, max_bytes)
    with open(path, "rb") as f:
        raw = f.read(limit + 1)
    if len(raw) > limit:  # it grew since the stat
        raise _too_big(path, len(raw), limit)
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


# --------------------------------------------------------------------------------------
# Reading a large file a piece at a time
# --------------------------------------------------------------------------------------
# A parsed JSON file takes five to eight times its size in Python objects, so a 5 GB detection
# file cannot be parsed whole on a 24 GB machine. Instead, a scan of the bytes (a numba loop,
# a chunk at a time) lists the file's skeleton down to a depth of two -- the top-level object,
# its members, and the members of the objects among them (the samples of 'results') -- and each
# piece is then parsed on its own (:func:`loads_piece`). Every byte is accounted for: those at
# depth <= 2 outside strings are structure, whitespace or a scalar the scan marks, and all the
# rest lies inside a piece that a JSON parser reads, so a file the scan and the pieces accept is
# valid JSON. Anything else raises :class:`NotPieceable` and the caller reads the file whole.

class NotPieceable(Exception):
    """The file's skeleton is not the ``{"key": value, ...}`` the piecewise reader handles, or a
    piece is not JSON: read the file whole (which gives the precise error, if any)."""


#: Events of the scan: each structural byte is its own code, plus a scalar run's start and end.
_QUOTE, _COLON, _COMMA = ord('"'), ord(":"), ord(",")
_LBRACE, _RBRACE, _LBRACKET, _RBRACKET = ord("{"), ord("}"), ord("["), ord("]")
_SCALAR, _SCALAR_END = ord("s"), ord("e")
#: Events are kept down to this depth: the top object (0), its members (1), theirs (2).
_MAX_LEVEL = 2
#: Deeper nesting than this anywhere: read whole. Real files nest 5 deep; near 1,000 the two
#: parsers differ (orjson's limit is 1,024, Python's recursion limit ~1,000), and the whole-file
#: path owns the "nested too deeply" message.
MAX_PIECEWISE_DEPTH = 64
#: Bytes read per scan step (a bounded buffer, reused).
_CHUNK_BYTES = 16 * 2 ** 20


def _scan_chunk_py(buf, offset, state, pos, kind, level, n):
    """Append the events of ``buf`` (file bytes from ``offset``) at depth <= _MAX_LEVEL to
    ``pos``/``kind``/``level`` from index ``n``. Returns ``(n, i)``: ``i`` is ``len(buf)``, or
    where it stopped with the arrays full (grow them and call again on ``buf[i:]``). ``state``
    carries across calls: [in string, escape pending, depth, deepest depth, in scalar run,
    unbalanced closer seen]. Compiled by numba on first use (:func:`_scan_chunk`)."""
    in_str, escaped, depth, deepest, in_scalar = state[0], state[1], state[2], state[3], state[4]
    i = 0
    while i < buf.shape[0]:
        if n + 2 > pos.shape[0]:  # one byte gives at most two events (a scalar's end, then itself)
            break
        c = buf[i]
        i += 1
        if in_str:  # inside a string only the escape and the closing quote matter
            if escaped:
                escaped = 0
            elif c == 92:  # backslash: the next byte is escaped, whatever it is
                escaped = 1
            elif c == _QUOTE:
                in_str = 0
                if depth <= _MAX_LEVEL:
                    pos[n], kind[n], level[n] = offset + i - 1, c, depth
                    n += 1
            continue
        if depth > _MAX_LEVEL:  # deep inside a value (most bytes): only strings and brackets matter
            if c == _QUOTE:
                in_str = 1
            elif c == _LBRACE or c == _LBRACKET:
                depth += 1
                deepest = max(deepest, depth)
            elif c == _RBRACE or c == _RBRACKET:
                depth -= 1
                if depth == _MAX_LEVEL:
                    pos[n], kind[n], level[n] = offset + i - 1, c, depth
                    n += 1
            continue
        space = c == 32 or c == 9 or c == 10 or c == 13  # JSON's four whitespace bytes
        structural = (c == _QUOTE or c == _COLON or c == _COMMA or c == _LBRACE or c == _RBRACE
                      or c == _LBRACKET or c == _RBRACKET)
        if in_scalar and (space or structural):  # a number, true, NaN, ... ends here
            in_scalar = 0
            pos[n], kind[n], level[n] = offset + i - 1, _SCALAR_END, depth
            n += 1
        if space:
            continue
        event = -1  # the depth to record this byte at, if any
        if c == _QUOTE:
            in_str = 1
            event = depth
        elif c == _LBRACE or c == _LBRACKET:
            event = depth
            depth += 1
            deepest = max(deepest, depth)
        elif c == _RBRACE or c == _RBRACKET:
            depth -= 1
            if depth < 0:
                state[5] = 1
                depth = 0
            event = depth
        elif c == _COLON or c == _COMMA:
            event = depth
        elif not in_scalar and depth <= _MAX_LEVEL:  # the first byte of a scalar run
            in_scalar = 1
            c = _SCALAR
            event = depth
        if 0 <= event <= _MAX_LEVEL:
            pos[n], kind[n], level[n] = offset + i - 1, c, event
            n += 1
    state[0], state[1], state[2], state[3], state[4] = in_str, escaped, depth, deepest, in_scalar
    return n, i


_scan_chunk_jit = None


def _scan_chunk(*args):
    """numba is imported on first use only: importing nutrack.data stays light."""
    global _scan_chunk_jit
    if _scan_chunk_jit is None:
        import numba

        _scan_chunk_jit = numba.njit(cache=True, nogil=True)(_scan_chunk_py)
    return _scan_chunk_jit(*args)


def scan_events(f, size: int, start: int = 0) -> Tuple[list, list, list]:
    """The skeleton of the open file ``f`` (``size`` bytes, scanned from ``start``): lists of
    event positions, kinds and depths, read a chunk at a time. NotPieceable if it is not
    balanced, nests deeper than :data:`MAX_PIECEWISE_DEPTH` or changed while read."""
    buf = np.empty(max(1, min(size, _CHUNK_BYTES)), np.uint8)
    state = np.zeros(6, np.int64)
    pos, kind, level = np.empty(4096, np.int64), np.empty(4096, np.uint8), np.empty(4096, np.int64)
    n, offset = 0, start
    f.seek(start)
    while offset < size:
        got = f.readinto(memoryview(buf)[: min(len(buf), size - offset)])
        if not got:
            raise NotPieceable("the file shrank while read")
        done = 0
        while done < got:
            n, step = _scan_chunk(buf[done:got], offset + done, state, pos, kind, level, n)
            done += step
            if done < got:  # the event arrays are full: double them
                pos, kind, level = (np.concatenate([a, np.empty_like(a)]) for a in (pos, kind, level))
        offset += got
    if f.read(1):
        raise NotPieceable("the file grew while read")
    in_str, _, depth, deepest, in_scalar, unbalanced = state.tolist()
    if in_str or depth or unbalanced or deepest > MAX_PIECEWISE_DEPTH:
        raise NotPieceable("unbalanced or deeply nested")
    pos, kind, level = pos[:n].tolist(), kind[:n].tolist(), level[:n].tolist()
    if in_scalar:  # the file ends in a scalar run
        pos.append(size), kind.append(_SCALAR_END), level.append(depth)
    return pos, kind, level


Member = Tuple[int, int, int, int, int]  # key start, key end, value start, value end, value's event


def object_members(events: Tuple[list, list, list], k: int) -> Tuple[List[Member], int]:
    """The members of the object whose ``{`` is event ``k``, and the index of its ``}``.
    Byte ranges are half-open and include the quotes and brackets; a value's event is the
    index of its first event (its ``{``, ``[``, quote or scalar start). NotPieceable unless
    the events spell ``{"key": value, ...}`` exactly (no trailing comma, nothing between)."""
    pos, kind, level = events
    members: List[Member] = []
    try:
        if kind[k] != _LBRACE:
            raise NotPieceable("not an object")
        d = level[k] + 1  # the depth of the members' keys, colons, commas and values
        k += 1
        if kind[k] == _RBRACE and level[k] == d - 1:
            return members, k
        while True:
            # a string's two quotes are consecutive events: nothing inside a string is one
            if kind[k] != _QUOTE or level[k] != d or kind[k + 2] != _COLON or level[k + 2] != d:
                raise NotPieceable("expected a key and a colon")
            key = (pos[k], pos[k + 1] + 1)
            k += 3
            first = k
            if kind[k] in (_LBRACE, _LBRACKET) and level[k] == d:
                j = k + 1
                while level[j] != d:  # the events between lie deeper: the value's insides
                    j += 1
                if kind[j] != (_RBRACE if kind[k] == _LBRACE else _RBRACKET):
                    raise NotPieceable("mismatched brackets")
                value, k = (pos[k], pos[j] + 1), j + 1
            elif kind[k] == _QUOTE and level[k] == d:
                value, k = (pos[k], pos[k + 1] + 1), k + 2
            elif kind[k] == _SCALAR and level[k] == d:
                value, k = (pos[k], pos[k + 1]), k + 2
            else:
                raise NotPieceable("expected a value")
            members.append(key + value + (first,))
            if kind[k] == _RBRACE and level[k] == d - 1:
                return members, k
            if kind[k] != _COMMA or level[k] != d:
                raise NotPieceable("expected a comma or the end of the object")
            k += 1
    except IndexError:  # the events ran out inside the object
        raise NotPieceable("unterminated object") from None


def document_members(events: Tuple[list, list, list]) -> List[Member]:
    """The members of the top-level object, which must be the whole document (only
    whitespace after it); NotPieceable otherwise."""
    if not events[0]:
        raise NotPieceable("an empty file")
    members, end = object_members(events, 0)
    if end != len(events[0]) - 1:
        raise NotPieceable("more after the top-level object")
    return members


def read_range(f, start: int, end: int) -> bytes:
    f.seek(start)
    return f.read(end - start)


def loads_piece(raw: bytes) -> Any:
    """One piece of a file, parsed as :func:`parse_json` parses a whole one: orjson, else the
    standard library (NaN/Infinity tokens); NotPieceable where neither accepts it, so that the
    whole-file path gives its message."""
    if _orjson is not None:
        try:
            return _orjson.loads(raw)
        except _orjson.JSONDecodeError:
            pass
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise NotPieceable("a piece that is not JSON") from None
