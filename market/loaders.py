"""Loaders: a lakehouse folder (one OHLCV file per symbol), a wide close file, scanner snapshots.

Errors are ``DataError``s that name the file, symbol, date or field. Loading never writes anything.

Lakehouse layout: ``DIR/<SYMBOL>.parquet`` or ``DIR/<SYMBOL>.csv`` with columns
``date, open, high, low, close, volume`` (``date`` ISO-8601, read as UTC; prices in quote currency;
volume in units of the asset; finite and >= 0 on every row with a close, or an entirely empty column
for "no volume"). Symbols must be safe file names (``[A-Za-z0-9][A-Za-z0-9._-]*``).

Snapshots: ``DIR/YYYY-MM-DD.json``, each a JSON list of candidate records (``contracts.Candidate``
fields with the scanner's names: ``symbol, exchange, asset_type, sector, logic, direction,
Value.Traded, Recommend.All, Recommend.MA, ROC, Volatility.D, ADX``), or an object
``{"date": ..., "candidates": [...]}``. A single file (JSON list or CSV) with no date is an undated
export: usable, flagged ``point_in_time = False``.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import ValidationError

from contracts.candidate import CANDIDATE_COLUMNS, Candidate
from contracts.errors import DataError
from market.panel import validate_panel
from market.snapshots import SnapshotStore

SAFE_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
OHLCV = ("open", "high", "low", "close", "volume")
_DATE_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.json$")


@dataclass(frozen=True)
class MarketData:
    """A validated market: ``closes`` (dates x symbols) and, when known, the other OHLCV fields."""

    closes: pd.DataFrame
    fields: dict[str, pd.DataFrame] = field(default_factory=dict)  # open/high/low/volume
    source: str = "panel"

    def field(self, name: str) -> pd.DataFrame | None:
        return self.closes if name == "close" else self.fields.get(name)


def check_symbol(symbol: str, where: str = "") -> str:
    """Raise ``DataError`` unless ``symbol`` is a safe file name."""
    if not isinstance(symbol, str) or not SAFE_SYMBOL.match(symbol) or ".." in symbol:
        raise DataError(f"{where}symbol {symbol!r} is not a safe file name "
                        "(letters, digits, '.', '_', '-'; not starting with '.')")
    return symbol


def _read_table(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - any parser failure is a data error on this file
        raise DataError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from exc


#: an explicit UTC offset other than zero at the end of an ISO timestamp ("+05:00", "-0400")
_OFFSET = re.compile(r"[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?([+-](?!00:?00)\d{2}:?\d{2})$")


def _parse_dates(values, where: str) -> pd.DatetimeIndex:
    """Dates read as UTC. Timestamps with a non-zero UTC offset are rejected (per file): converting
    them would move every bar to another calendar day (a 00:00+05:00 close is 19:00 UTC the day before)."""
    if isinstance(values, pd.DatetimeIndex) or pd.api.types.is_datetime64_any_dtype(values):
        tz = getattr(getattr(values, "dt", values), "tz", None)
        if tz is not None and str(tz) not in ("UTC", "utc"):
            raise DataError(f"{where}: dates carry the time zone {tz}: give dates in UTC (or without a zone)")
    else:
        for i, v in enumerate(values):
            if isinstance(v, str) and (m := _OFFSET.search(v.strip())):
                raise DataError(f"{where}: date {v!r} at row {i} carries the UTC offset {m.group(1)}: give dates "
                                "in UTC (or without an offset); converting would move bars to another day")
    try:
        idx = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    except (ValueError, TypeError) as exc:
        raise DataError(f"{where}: unparseable date ({exc})") from exc
    if idx.isna().any():
        raise DataError(f"{where}: missing date at row {int(np.argmax(idx.isna()))}")
    return idx


def _check_volume(vals: np.ndarray, idx: pd.DatetimeIndex, path: Path, sym: str, df: pd.DataFrame,
                  cols: dict) -> None:
    """Volume must be finite and >= 0 on every row with a close (``Value.Traded = close x volume``
    feeds the liquidity veto and score). A volume column that is entirely empty means "no volume"
    (``write_lakehouse`` writes one for close-only data) and is accepted."""
    if np.isnan(vals).all():
        return
    close = pd.to_numeric(df[cols["close"]], errors="coerce").to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~np.isnan(close) & ~(np.isfinite(vals) & (vals >= 0))
    if bad.any():
        k = int(np.argmax(bad))
        raise DataError(f"{path}: symbol {sym!r}: invalid volume {vals[k]!r} on {idx[k].date()} "
                        "(volume must be finite and >= 0)")


def load_lakehouse(folder: str | Path) -> MarketData:
    """Load a lakehouse folder into a validated ``MarketData`` (outer join of dates)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: data folder not found")
    files = sorted((p for p in folder.iterdir() if p.suffix in (".parquet", ".csv") and p.is_file()),
                   key=lambda p: (p.stem, p.suffix))
    if not files:
        raise DataError(f"{folder}: no .parquet or .csv price file")
    per_field: dict[str, dict[str, pd.Series]] = {f: {} for f in OHLCV}
    seen: dict[str, Path] = {}
    for path in files:
        sym = check_symbol(path.stem, f"{path}: ")
        if sym in seen:
            raise DataError(f"{path}: symbol {sym!r} also in {seen[sym].name}")
        seen[sym] = path
        df = _read_table(path)
        cols = {c.lower(): c for c in df.columns}
        if "date" not in cols or "close" not in cols:
            raise DataError(f"{path}: needs columns date and close (has {list(df.columns)})")
        idx = _parse_dates(df[cols["date"]], str(path))
        if idx.has_duplicates:
            raise DataError(f"{path}: symbol {sym!r}: duplicate date {idx[idx.duplicated()][0].date()}")
        if not idx.is_monotonic_increasing:
            bad = int(np.argmax(np.diff(idx.asi8) < 0)) + 1
            raise DataError(f"{path}: symbol {sym!r}: dates not increasing at {idx[bad].date()}")
        for f in OHLCV:
            if f in cols:
                try:
                    vals = pd.to_numeric(df[cols[f]], errors="raise").to_numpy(dtype=np.float64)
                except (ValueError, TypeError) as exc:
                    raise DataError(f"{path}: symbol {sym!r}: column {f!r} is not numeric ({exc})") from exc
                if f == "volume":
                    _check_volume(vals, idx, path, sym, df, cols)
                per_field[f][sym] = pd.Series(vals, index=idx)
    closes = validate_panel(pd.DataFrame(per_field["close"]).sort_index(), source=str(folder))
    fields = {f: pd.DataFrame(s).reindex(index=closes.index, columns=closes.columns)
              for f, s in per_field.items() if f != "close" and s}
    return MarketData(closes=closes, fields=fields, source=str(folder))


def write_lakehouse(data: MarketData, folder: str | Path, fmt: str = "parquet") -> list[Path]:
    """Write one file per symbol (rows where the close exists). Returns the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for sym in data.closes.columns:
        check_symbol(sym)
        c = data.closes[sym]
        mask = c.notna().to_numpy()
        df = pd.DataFrame({"date": data.closes.index[mask]})
        for f in OHLCV:
            src = data.field(f)
            df[f] = src[sym].to_numpy()[mask] if src is not None else np.nan
        path = folder / f"{sym}.{fmt}"
        if fmt == "parquet":
            df.to_parquet(path, index=False)
        else:
            df.to_csv(path, index=False, float_format="%.17g")
        out.append(path)
    return out


def load_wide(path: str | Path) -> MarketData:
    """Load a wide file of closes (CSV or Parquet): a ``date`` column (or index) and one column per symbol."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    df = _read_table(path)
    if "date" in df.columns:
        df = df.set_index("date")
    elif df.index.name != "date":
        raise DataError(f"{path}: needs a 'date' column")
    df.index = _parse_dates(df.index, str(path))
    for c in df.columns:
        check_symbol(str(c), f"{path}: ")
        if not pd.api.types.is_numeric_dtype(df[c]):
            raise DataError(f"{path}: symbol {c!r}: non-numeric prices")
    return MarketData(closes=validate_panel(df, source=str(path)), source=str(path))


def _records(raw, where: str) -> list[dict]:
    if isinstance(raw, dict) and "candidates" in raw:
        raw = raw["candidates"]
    if not isinstance(raw, list):
        raise DataError(f"{where}: expected a list of candidate records")
    return raw


def _frame_from_records(records: list[dict], where: str, date: pd.Timestamp | None) -> pd.DataFrame:
    rows = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise DataError(f"{where}: record {i} is not an object")
        sym = rec.get("symbol")
        try:
            check_symbol(sym, f"{where}: record {i}: ")
            rows.append(Candidate.model_validate(rec).as_row())
        except ValidationError as exc:
            err = exc.errors()[0]
            field_name = ".".join(str(x) for x in err["loc"])
            raise DataError(f"{where}: record {i} (symbol {sym!r}): field {field_name!r}: {err['msg']} "
                            f"(got {err.get('input')!r})") from None
    _check_duplicates(rows, where)
    df = pd.DataFrame(rows, columns=list(CANDIDATE_COLUMNS[:-1]))
    df["snapshot_date"] = date
    return df


def _check_duplicates(rows: list[dict], where: str) -> None:
    """Two records for one (symbol, logic, direction) must be identical; an exact repeat is kept once
    by the pool's one-per-identity rule, a conflicting one is an error naming both records."""
    seen: dict[tuple, int] = {}
    for i, row in enumerate(rows):
        key = (row["symbol"], row["logic"], row["direction"])
        j = seen.setdefault(key, i)
        if j != i and rows[j] != row:
            diff = sorted(k for k in row if rows[j][k] != row[k])
            raise DataError(f"{where}: records {j} and {i} (symbol {row['symbol']!r}, {row['logic']} "
                            f"{row['direction']}) conflict on {', '.join(diff)}")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_snapshots(path: str | Path) -> SnapshotStore:
    """Load scanner snapshots: a folder of ``YYYY-MM-DD.json`` files, or one undated export file."""
    path = Path(path)
    if path.is_file():
        return load_undated_export(path)
    if not path.is_dir():
        raise DataError(f"{path}: candidates folder or file not found")
    frames: dict[pd.Timestamp, pd.DataFrame] = {}
    digests: dict[str, str] = {}
    files = sorted(path.glob("*.json"))
    if not files:
        raise DataError(f"{path}: no snapshot file (expected YYYY-MM-DD.json)")
    for f in files:
        m = _DATE_FILE.match(f.name)
        if not m:
            raise DataError(f"{f}: snapshot file name must be YYYY-MM-DD.json")
        date = pd.Timestamp(m.group(1), tz="UTC")
        try:
            raw = json.loads(f.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{f}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        frames[date] = _frame_from_records(_records(raw, str(f)), str(f), date)
        digests[f.name] = _digest(f)
    return SnapshotStore(frames=frames, point_in_time=True, source=str(path), digests=digests)


def load_undated_export(path: Path) -> SnapshotStore:
    """One export with no date (JSON list or CSV): used for every window, flagged not point-in-time."""
    if path.suffix == ".json":
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        records = _records(raw, str(path))
    elif path.suffix == ".csv":
        records = [{k: v for k, v in r.items() if not (isinstance(v, float) and np.isnan(v))}
                   for r in _read_table(path).to_dict("records")]
    else:
        raise DataError(f"{path}: candidates must be .json or .csv")
    frame = _frame_from_records(records, str(path), None)
    return SnapshotStore(frames={pd.Timestamp(0, tz="UTC"): frame}, point_in_time=False,
                         source=str(path), digests={path.name: _digest(path)})


def write_snapshots(store: SnapshotStore, folder: str | Path) -> list[Path]:
    """Write a dated store as ``YYYY-MM-DD.json`` files (records with the scanner's field names)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for date in store.dates:
        df = store.frames[date].drop(columns=["snapshot_date"])
        recs = [{k: (None if (isinstance(v, float) and np.isnan(v)) else v) for k, v in r.items()}
                for r in df.to_dict("records")]
        recs = [{k: v for k, v in r.items() if v is not None} for r in recs]
        p = folder / f"{date.date().isoformat()}.json"
        p.write_text(json.dumps(recs, indent=1, sort_keys=True))
        out.append(p)
    return out


def panel_digest(closes: pd.DataFrame) -> str:
    """SHA-256 of the panel's values, dates and symbols (stable across file formats)."""
    h = hashlib.sha256()
    h.update(",".join(closes.columns).encode())
    h.update(closes.index.as_unit("ns").asi8.tobytes())
    h.update(np.ascontiguousarray(closes.to_numpy(dtype=np.float64)).tobytes())
    return h.hexdigest()
