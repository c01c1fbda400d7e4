"""The run directory layout (DESIGN section 3) and its atomic writers."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from contracts.schemas import check_frame


def atomic_write_bytes(path: Path, blob: bytes) -> None:
    """Write via a temporary file, fsync, rename: a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(blob)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json(path: Path, obj) -> None:
    """A readable JSON file (``indent=1``: Python's pure-Python encoder; for files written once per run)."""
    atomic_write_bytes(path, json.dumps(obj, sort_keys=True, indent=1, allow_nan=False).encode())


def encode_json(obj) -> bytes:
    """Compact JSON bytes (sorted keys, no whitespace, no NaN: ``ValueError``) by the C encoder, about
    four times faster than ``indent``: the per-unit machine files (``units/``,
    ``portfolio_candidates.json``; any JSON reader reads both layouts)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def write_parquet(run_dir: Path, name: str, df: pd.DataFrame) -> Path:
    """Check ``df`` against the frozen schema of ``name`` and write it."""
    frame = check_frame(df, name)
    path = run_dir / name
    tmp = path.with_name(f".{name}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


def unit_path(run_dir: Path, setting_id: str, k: int) -> Path:
    return run_dir / "units" / setting_id / f"{k:04d}.json"


def candidates_path(run_dir: Path, setting_id: str, k: int) -> Path:
    return run_dir / "selection" / setting_id / str(k) / "portfolio_candidates.json"
