"""The run directory layout (DESIGN section 3) and its atomic writers."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from contracts.errors import DataError
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


#: rows per row group of a Parquet file: pyarrow's default (``pq.write_table``: min(rows, 1024 * 1024))
ROW_GROUP_ROWS = 1024 * 1024


def write_parquet_parts(run_dir: Path, name: str, parts) -> Path:
    """Write ``name`` from ``parts``, Arrow IPC streams of consecutive slices of one frame already
    checked against ``name``'s schema (``tournament.post_tasks.encode_frame``), as ``write_parquet``
    writes the concatenated frame: the same schema (with its pandas metadata), rows, row groups of
    ``ROW_GROUP_ROWS`` and defaults, while at most one row group's rows and one part are decoded at a
    time. ``parts``: an iterable of bytes (consumed once). An empty ``parts`` raises ``ValueError``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = run_dir / name
    tmp = path.with_name(f".{name}.tmp")
    writer, buf, n_buf, schema, groups = None, [], 0, None, 0
    try:
        for blob in parts:
            table = pa.ipc.open_stream(pa.py_buffer(blob)).read_all()
            if schema is None:
                schema = table.schema
                writer = pq.ParquetWriter(str(tmp), schema)
            elif not table.schema.equals(schema, check_metadata=False):
                raise DataError(f"{name}: a part's schema {table.schema} differs from the first part's {schema}")
            buf.append(table.replace_schema_metadata(schema.metadata))
            n_buf += table.num_rows
            while n_buf >= ROW_GROUP_ROWS:  # one full row group, contiguous as one table's would be
                whole = pa.concat_tables(buf).combine_chunks()
                writer.write_table(whole.slice(0, ROW_GROUP_ROWS), row_group_size=ROW_GROUP_ROWS)
                rest = whole.slice(ROW_GROUP_ROWS)
                buf, n_buf, groups = [rest], rest.num_rows, groups + 1
        if writer is None:
            raise ValueError(f"{name}: no parts to write")
        if n_buf or not groups:  # the last, shorter row group (an empty file has one of 0 rows)
            writer.write_table(pa.concat_tables(buf).combine_chunks(), row_group_size=ROW_GROUP_ROWS)
        writer.close()
        writer = None
        os.replace(tmp, path)
    finally:
        if writer is not None:
            writer.close()
    return path


def unit_path(run_dir: Path, setting_id: str, k: int) -> Path:
    return run_dir / "units" / setting_id / f"{k:04d}.json"


def candidates_path(run_dir: Path, setting_id: str, k: int) -> Path:
    return run_dir / "selection" / setting_id / str(k) / "portfolio_candidates.json"
