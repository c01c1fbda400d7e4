"""Everything the report reads, loaded once from a run directory (and nothing else).

The loader is tolerant: a missing optional file or key gives an empty frame/dict and a note in
``RunData.missing`` (shown on the page), never an exception. Only a run directory without
``audit.jsonl`` *and* ``performance_matrix.csv`` is refused (``DataError``): there is nothing to show.

Units follow ``contracts.schemas``: daily simple returns as fractions, weights as fractions,
drawdowns negative, volatilities annualised fractions.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from audit.verify import VerifyReport, verify_ledger
from contracts.enums import RecordType
from contracts.errors import DataError
from contracts.schemas import RUN_SCHEMAS

PARQUETS = ("cells.parquet", "windows.parquet", "weights.parquet", "returns.parquet")


@dataclass
class RunData:
    """The run directory's content as the report needs it.

    ``records``: ledger records by type (each the record's ``data`` plus ``seq``); ``ledger``: the
    verification report; ``frames``: the Parquet files named in ``PARQUETS`` (empty frames with the
    schema's columns when missing); ``matrix``: ``performance_matrix.csv``; ``boot``:
    ``bootstrap.json``; ``config``: ``config.yaml``; ``missing``: files that were not found.
    """

    run_dir: Path
    config: dict[str, Any]
    ledger: VerifyReport
    records: dict[str, list[dict[str, Any]]]
    frames: dict[str, pd.DataFrame]
    matrix: pd.DataFrame
    boot: dict[str, Any]
    missing: list[str] = field(default_factory=list)

    # -- ledger helpers --------------------------------------------------------------------------
    def of(self, rtype: RecordType | str) -> list[dict[str, Any]]:
        return self.records.get(RecordType(rtype).value, [])

    @property
    def run_id(self) -> str:
        return self.records.get("_run_id", [{}])[0].get("run_id", self.run_dir.name)

    @property
    def run_start(self) -> dict[str, Any]:
        rs = self.of(RecordType.RUN_START)
        return rs[0] if rs else {}

    @property
    def periods_per_year(self) -> float:
        """P of the calendar (run_start inputs, else config's calendar name, else 365)."""
        p = self.run_start.get("inputs", {}).get("periods_per_year")
        if p:
            return float(p)
        cal = (self.config.get("market") or {}).get("calendar", "crypto")
        return 252.0 if cal == "exchange" else 365.0

    @property
    def point_in_time(self) -> bool | None:
        """False when a ``single_undated_export`` warning is recorded or run_start says so."""
        if any(w.get("code") == "single_undated_export" for w in self.of(RecordType.WARNING)):
            return False
        return self.run_start.get("inputs", {}).get("point_in_time")

    @property
    def checks(self) -> list[dict[str, Any]]:
        """``check`` records except the run summary."""
        return [c for c in self.of(RecordType.CHECK) if c.get("key") != "check_summary"]

    def base_setting(self) -> tuple[int, int, int] | None:
        """(step_size, train_window, feature_lookback) of the base setting: config ``base``, else
        the setting with the most cells (verification axes run only at the base)."""
        b = self.config.get("base") or {}
        if {"step_size", "train_window", "feature_lookback"} <= set(b):
            return int(b["step_size"]), int(b["train_window"]), int(b["feature_lookback"])
        cells = self.frames["cells.parquet"]
        if cells.empty:
            return None
        top = cells.groupby(["step_size", "train_window", "feature_lookback"]).size().idxmax()
        return tuple(int(x) for x in top)


def setting_id(step_size: int, train_window: int, feature_lookback: int) -> str:
    """Same rule as ``contracts.cell.SettingKey.id``."""
    return f"s{int(step_size)}_t{int(train_window)}_l{int(feature_lookback)}"


def _empty(name: str) -> pd.DataFrame:
    return pd.DataFrame({c.name: pd.Series(dtype=object) for c in RUN_SCHEMAS[name]})


def _read_ledger(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Records grouped by type; a line that does not parse is skipped (verification reports it)."""
    out: dict[str, list[dict[str, Any]]] = {}
    if not path.is_file():
        return out
    with open(path, "rb") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict) or "type" not in rec:
                continue
            data = rec.get("data") if isinstance(rec.get("data"), dict) else {}
            out.setdefault(rec["type"], []).append({**data, "seq": rec.get("seq")})
            if "_run_id" not in out:
                out["_run_id"] = [{"run_id": rec.get("run_id")}]
    return out


def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory (see the module docstring for what is optional)."""
    root = Path(run_dir)
    if not root.is_dir():
        raise DataError(f"{root}: run directory not found")
    missing: list[str] = []
    ledger_path = root / "audit.jsonl"
    if not ledger_path.is_file() and not (root / "performance_matrix.csv").is_file():
        raise DataError(f"{root}: neither audit.jsonl nor performance_matrix.csv: not a run directory")
    ledger = verify_ledger(root)
    records = _read_ledger(ledger_path)
    config: dict[str, Any] = {}
    if (root / "config.yaml").is_file():
        loaded = yaml.safe_load((root / "config.yaml").read_text())
        config = loaded if isinstance(loaded, dict) else {}
    else:
        missing.append("config.yaml")
    frames = {}
    for name in PARQUETS:
        p = root / name
        if p.is_file():
            frames[name] = pd.read_parquet(p)
        else:
            missing.append(name)
            frames[name] = _empty(name)
    matrix = pd.DataFrame()
    if (root / "performance_matrix.csv").is_file():
        matrix = pd.read_csv(root / "performance_matrix.csv")
    else:
        missing.append("performance_matrix.csv")
    boot: dict[str, Any] = {}
    if (root / "bootstrap.json").is_file():
        boot = json.loads((root / "bootstrap.json").read_text())
    else:
        missing.append("bootstrap.json")
    return RunData(root, config, ledger, records, frames, matrix, boot, missing)


def equity_drawdown(returns: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Equity (initial capital 1) and drawdown from the high-water mark (<= 0, fraction).

    The high-water mark includes the initial capital (DESIGN section 4, as ``audit.metrics``).
    """
    r = returns.to_numpy(dtype=np.float64)
    equity = np.cumprod(1.0 + r)
    hwm = np.maximum.accumulate(np.concatenate(([1.0], equity)))[1:]
    dd = np.where(hwm > 0, equity / np.where(hwm > 0, hwm, 1.0) - 1.0, -1.0)
    return (pd.Series(equity, index=returns.index), pd.Series(np.clip(dd, -1.0, 0.0), index=returns.index))


def window_vols(returns: pd.DataFrame, periods_per_year: float) -> pd.DataFrame:
    """Realised annualised volatility per (cell_id, window): ``std(r, ddof=1) * sqrt(P)``, the
    convention of ``audit.metrics.annual_volatility``; NaN for a window with fewer than 2 bars
    (shown as "n/a", the rule of ``audit.checks.vol_bands``)."""
    if returns.empty:
        return pd.DataFrame(columns=["cell_id", "window", "realised_vol", "n_bars"])
    g = returns.groupby(["cell_id", "window"])["return"]
    out = pd.DataFrame({"realised_vol": g.std(ddof=1) * np.sqrt(periods_per_year), "n_bars": g.size()})
    return out.reset_index()
