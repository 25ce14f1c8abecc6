"""Parameter files: what ``python -m nutrack.tune`` writes and ``nutrack.track --params``,
``nutrack.train --params`` and ``make_tracker(..., params=FILE)`` read.

A params file is JSON: ``{"format": "nutrack-params/1", "method": "filter", "params": {...}}``
plus whatever the writer records about where the values come from (``tuned_on``, ``amota``,
...). ``params`` maps parameter names to values, a per-class parameter to ``{class: value}``;
parameters the file leaves out keep the defaults, so a hand-written file may hold only a few.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional, Tuple

from nutrack._cli import UserError

__all__ = ["FORMAT", "read_params_file", "write_params_file"]

FORMAT = "nutrack-params/1"


def _flatten(params: Dict[str, Any]) -> Dict[str, Any]:
    """``{"max_age": {"car": 3, ...}}`` -> ``{"max_age.car": 3, ...}`` (``with_overrides`` keys)."""
    out: Dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, dict):
            out.update({f"{name}.{cls}": v for cls, v in value.items()})
        else:
            out[name] = value
    return out


def read_params_file(path: str, base: Any, skip: Tuple[str, ...] = ()) -> Any:
    """``base`` (a parameter object such as ``FilterParams()``) with the file's values, but
    for the parameters named in ``skip``. Raises UserError naming the file for anything
    malformed."""
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        raise UserError(f"params file {path!r} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise UserError(f"params file {path!r} is not readable JSON ({type(error).__name__}: "
                        f"{str(error)[:120]})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("params"), dict):
        raise UserError(f"params file {path!r} is not a nutrack params file (expected an object with "
                        f"\"format\": \"{FORMAT}\" and \"params\")")
    try:
        return base.with_overrides(_flatten({k: v for k, v in doc["params"].items() if k not in skip}))
    except ValueError as error:
        raise UserError(f"params file {path!r}: {error}") from None


def write_params_file(path: str, params: Any, method: str = "filter", **record: Any) -> None:
    """Write ``params`` (a parameter object) atomically, with ``record`` beside it."""
    from nutrack._io import atomic_write_bytes

    doc = {"format": FORMAT, "method": method, "params": params.to_dict(), **record}
    atomic_write_bytes(os.fspath(path), (json.dumps(doc, indent=2, default=_plain) + "\n").encode())


def _plain(value: Any) -> Optional[Any]:
    return value.item() if hasattr(value, "item") else str(value)
