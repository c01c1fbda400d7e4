"""The run's volatility regimes as the report reads them (issue 20): ``regime_labels.parquet`` (one
label per date) and ``regimes.parquet`` (each cell's figures on each regime's days), both optional
(a run written before schema 1.2 has neither: empty frames, and the pages say so).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from audit.regimes import REGIME_ORDER, regime_mix


def load_labels(run_dir: Path) -> pd.Series:
    """Regime per date (``string`` dtype, ``<NA>`` unlabelled); empty when the file is absent."""
    p = Path(run_dir) / "regime_labels.parquet"
    if not p.is_file():
        return pd.Series(dtype="string")
    df = pd.read_parquet(p)
    return pd.Series(df["regime"].to_numpy(), index=pd.DatetimeIndex(df["date"]), dtype="string")


def load_figures(run_dir: Path) -> pd.DataFrame:
    """``regimes.parquet`` (empty frame when absent)."""
    p = Path(run_dir) / "regimes.parquet"
    return pd.read_parquet(p) if p.is_file() else pd.DataFrame()


def window_mixes(labels: pd.Series, wdates: dict[tuple[str, int], dict[str, str]]) -> dict[tuple[str, int], dict]:
    """Days of each regime (and unlabelled) in each window's test slice (``test_start .. test_end``,
    dates as ``YYYY-MM-DD``); empty when there are no labels."""
    if labels.empty:
        return {}
    out = {}
    for key, d in wdates.items():
        s, e = d.get("test_start"), d.get("test_end")
        if not s or not e or "n/a" in (s, e):
            continue
        out[key] = regime_mix(labels, pd.Timestamp(s, tz="UTC"), pd.Timestamp(e, tz="UTC") + pd.Timedelta(hours=23))
    return out


def dominant(mix: dict) -> str:
    """The regime with the most days of a mix (ties: the calmer), or ``n/a``."""
    counts = [(mix.get(r, 0), -i, r) for i, r in enumerate(REGIME_ORDER)]
    best = max(counts)
    return best[2] if best[0] > 0 else "n/a"


def mix_text(mix: dict) -> str:
    """``calm 12 / turbulent 5 / crisis 3`` (plus unlabelled when any)."""
    if not mix:
        return "n/a"
    text = " / ".join(f"{r} {mix.get(r, 0)}" for r in REGIME_ORDER)
    return text + (f" / unlabelled {mix['unlabelled']}" if mix.get("unlabelled") else "")
