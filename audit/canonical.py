"""Canonical JSON of ledger records: the exact bytes that are hashed and written.

Rules (the ledger's line format, see ``contracts.ledger.LedgerRecord``):

- keys sorted, separators ``,`` and ``:`` (no whitespace), ASCII only (non-ASCII escaped as ``\\uXXXX``);
- floats in Python's shortest round-trip form (``repr``), so a float read back is bit-identical;
- no NaN or infinity: a non-finite float is replaced by ``null`` and its location is added, as a JSON
  Pointer (RFC 6901, e.g. ``/returns/c1a2/3``) relative to the record's ``data``, to the list
  ``data["_nonfinite"]`` as ``{"path": ..., "value": "nan" | "inf" | "-inf"}``;
- numpy scalars become Python scalars, numpy arrays nested lists; ``pandas.Timestamp`` and
  ``datetime`` become ISO-8601 strings (``Timestamp.isoformat()``), ``date`` ``YYYY-MM-DD``; enums
  their value; pydantic models their ``model_dump(mode="python")``; tuples lists;
- mapping keys must be strings (or str enums, or ints, which become their decimal string); anything
  else raises ``DataError`` naming the path.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from contracts.errors import DataError

NONFINITE_KEY = "_nonfinite"


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def normalize(obj: Any, path: str = "", nonfinite: list[dict] | None = None) -> Any:
    """Return a JSON-ready copy of ``obj``; non-finite floats become ``None`` and are listed.

    ``nonfinite`` collects ``{"path", "value"}`` entries; pass ``None`` to raise ``DataError``
    on a non-finite float instead.
    """
    if obj is pd.NaT:
        raise DataError(f"NaT at {path or '/'} in a ledger record")
    if obj is None or isinstance(obj, (bool, np.bool_)):
        return None if obj is None else bool(obj)
    if isinstance(obj, Enum):
        return normalize(obj.value, path, nonfinite)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        if math.isfinite(x):
            return x
        kind = "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
        if nonfinite is None:
            raise DataError(f"non-finite float ({kind}) at {path or '/'} in a ledger record")
        nonfinite.append({"path": path or "/", "value": kind})
        return None
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    if isinstance(obj, _dt.datetime):
        return obj.isoformat()
    if isinstance(obj, _dt.date):
        return obj.isoformat()
    if isinstance(obj, np.datetime64):
        return normalize(pd.Timestamp(obj), path, nonfinite)
    if isinstance(obj, BaseModel):
        return normalize(obj.model_dump(mode="python"), path, nonfinite)
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            if isinstance(k, Enum):
                k = k.value
            if isinstance(k, (bool, np.bool_)) or not isinstance(k, (str, int, np.integer)):
                raise DataError(f"ledger keys must be strings: {k!r} at {path or '/'}")
            key = str(int(k)) if not isinstance(k, str) else k
            if key in out:
                raise DataError(f"duplicate key {key!r} at {path or '/'} after conversion")
            out[key] = normalize(v, f"{path}/{_escape(key)}", nonfinite)
        return out
    if isinstance(obj, np.ndarray):
        return [normalize(v, f"{path}/{i}", nonfinite) for i, v in enumerate(obj.tolist())]
    if isinstance(obj, (list, tuple)):
        return [normalize(v, f"{path}/{i}", nonfinite) for i, v in enumerate(obj)]
    raise DataError(f"cannot encode {type(obj).__name__} at {path or '/'} in a ledger record")


class _Slow(Exception):
    """``_fast`` met something only ``normalize`` (with paths) handles: a non-finite float, a bad or
    converted key, an error."""


def _fast(obj: Any) -> Any:
    """``normalize`` without JSON Pointer paths, for the common case of plain JSON types (exact
    ``dict``/``list``/``tuple``/``str``/``int``/``float``/``bool``/``None``); other leaves go through
    ``normalize``. Raises ``_Slow`` where ``normalize`` would list a non-finite float or raise: the
    caller then runs ``normalize``, which names the path. Same output as ``normalize`` otherwise."""
    t = type(obj)
    if t is str or t is int or t is bool or obj is None:
        return obj
    if t is float:
        if obj - obj == 0.0:  # finite (inf - inf and nan - nan are nan)
            return obj
        raise _Slow
    if t is dict:
        out: dict[str, Any] = {}
        for k, v in obj.items():
            tk = type(k)
            if tk is int:
                k = str(k)
            elif tk is not str:
                raise _Slow
            if k in out:
                raise _Slow
            out[k] = _fast(v)
        return out
    if t is list or t is tuple:
        return [_fast(v) for v in obj]
    try:
        return normalize(obj, "", None)
    except DataError:
        raise _Slow from None


def normalize_data(data: dict) -> dict:
    """Normalise a record's ``data``; non-finite floats are nulled and listed under ``_nonfinite``.
    Plain JSON data takes a fast pass (``_fast``); anything else the full ``normalize``."""
    if not isinstance(data, dict):
        raise DataError(f"ledger data must be a dict, got {type(data).__name__}")
    if NONFINITE_KEY in data:
        raise DataError(f"{NONFINITE_KEY!r} is reserved in ledger data")
    try:
        return _fast(data)
    except (_Slow, RecursionError):
        pass
    flagged: list[dict] = []
    out = normalize(data, "", flagged)
    if flagged:
        out[NONFINITE_KEY] = flagged
    return out


def canonical_bytes(obj: Any) -> bytes:
    """Canonical JSON bytes of an already normalised object (raises ``DataError`` on NaN/inf)."""
    try:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                          allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DataError(f"object is not canonical-JSON encodable: {exc}") from exc
    return text.encode("ascii")


def record_hash(record_without_hash: dict) -> str:
    """SHA-256 hex digest of the canonical JSON of a record without its ``hash`` field."""
    return hashlib.sha256(canonical_bytes(record_without_hash)).hexdigest()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _finite_float(text: str) -> float:
    """A JSON number literal as a float; ``ValueError`` when it overflows to infinity (e.g. ``1e999``,
    which ``json`` would otherwise read as ``inf``, a value no canonical record can hold)."""
    x = float(text)
    if not math.isfinite(x):
        raise ValueError(f"number {text!r} is out of the float range")
    return x


def parse_line(line: bytes) -> Any:
    """Parse one ledger line strictly (no NaN/Infinity constants, no number that overflows to
    infinity). Raises ``ValueError``."""
    return json.loads(line.decode("ascii"), parse_constant=_reject_constant, parse_float=_finite_float)
