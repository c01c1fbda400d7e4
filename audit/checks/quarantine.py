"""Outlier (flash-crash) window quarantine, and metrics reported with and without those windows.

Rule (``QuarantineConfig``, defaults in brackets), on the market's daily simple returns (panel
returns over the tested bars, dates x symbols, NaN where a symbol does not trade):

- **crash**: the equal-weight market return ``m_t`` (cross-sectional mean of the available returns;
  a bar where nothing trades counts as 0) compounded over any span of 1 to ``max_span`` [3]
  consecutive bars is ``<= crash_threshold`` [-0.25]. Every window holding a bar of such a span is
  quarantined (a crash straddling two windows quarantines both).
- **volatility**: the window's cross-sectional median of per-symbol realised daily vol (std ddof 1
  over the window's bars, symbols with >= 2 returns) exceeds ``vol_multiple`` [3] times the median of
  that figure over all windows.

Window labels come from one sweep setting (windows of different step sizes are different date
ranges): run the rule once per setting and apply it to that setting's cells.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from audit.checks.result import CheckResult, CheckStatus, make_result
from audit.metrics import compute_metrics
from contracts.errors import DataError
from contracts.schemas import check_frame

NAME = "outlier_quarantine"


class QuarantineConfig(BaseModel):
    """Thresholds of the quarantine rule (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crash_threshold: float = Field(default=-0.25, gt=-1.0, lt=0.0)
    max_span: int = Field(default=3, ge=1)
    vol_multiple: float = Field(default=3.0, gt=1.0)


def _span_returns(m: np.ndarray, max_span: int) -> list[tuple[int, np.ndarray]]:
    """Per span length s in 1..max_span: compounded returns of bars ``i .. i+s-1`` for every i."""
    logs = np.log1p(np.maximum(m, -1.0 + 1e-300))  # a -100% day stays finite (~ -690)
    cs = np.concatenate(([0.0], np.cumsum(logs)))
    return [(s, np.expm1(cs[s:] - cs[:-s])) for s in range(1, min(max_span, m.size) + 1)]


def quarantine_windows(market_returns: pd.DataFrame, window_of_date: pd.Series,
                       config: QuarantineConfig = QuarantineConfig()
                       ) -> tuple[list[int], list[CheckResult]]:
    """Quarantined window numbers (sorted) and one result per window (``warn`` when quarantined,
    with the reasons; ``pass`` otherwise).

    ``market_returns``: dates x symbols daily simple returns, index strictly increasing;
    ``window_of_date``: window number per test date (index: dates present in ``market_returns``).
    """
    if not market_returns.index.is_monotonic_increasing or market_returns.index.has_duplicates:
        raise DataError("quarantine: market_returns index must be strictly increasing")
    missing = window_of_date.index.difference(market_returns.index)
    if len(missing):
        raise DataError(f"quarantine: window date {missing[0]} not in market_returns")
    vals = market_returns.to_numpy(dtype=np.float64)
    if np.any(vals[np.isfinite(vals)] < -1.0) or np.any(np.isinf(vals)):
        raise DataError("quarantine: market returns must be finite and >= -1")
    counts = np.isfinite(vals).sum(axis=1)
    sums = np.nansum(vals, axis=1)
    m = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    pos_of = {d: i for i, d in enumerate(market_returns.index)}
    win_at = np.full(m.size, -1, dtype=np.int64)
    for d, k in window_of_date.items():
        win_at[pos_of[d]] = int(k)
    windows = sorted(set(int(k) for k in window_of_date.to_numpy()))
    reasons: dict[int, list[str]] = {k: [] for k in windows}
    worst: dict[int, float] = {k: 0.0 for k in windows}
    for span, rets in _span_returns(m, config.max_span):
        for j in range(span):  # bar i + j of the span starting at bar i
            labels = win_at[j:j + rets.size]
            for k in windows:
                sel = labels == k
                if sel.any():
                    worst[k] = min(worst[k], float(rets[sel].min()))
        for i in np.flatnonzero(rets <= config.crash_threshold):
            span_dates = f"{market_returns.index[i].date()}..{market_returns.index[i + span - 1].date()}"
            msg = f"crash {rets[i]:.4f} over {span_dates}"
            for k in sorted({int(x) for x in win_at[i:i + span] if x >= 0}):
                if msg not in reasons[k]:
                    reasons[k].append(msg)
    med_vol: dict[int, float | None] = {}
    for k in windows:
        block = market_returns.loc[window_of_date.index[window_of_date.to_numpy() == k]]
        stds = [float(np.std(c[np.isfinite(c)], ddof=1)) for c in block.to_numpy(dtype=np.float64).T
                if np.isfinite(c).sum() >= 2]
        med_vol[k] = float(np.median(stds)) if stds else None
    known = [v for v in med_vol.values() if v is not None]
    overall = float(np.median(known)) if known else None
    results = []
    for k in windows:
        ratio = None
        if overall and med_vol[k] is not None:
            ratio = med_vol[k] / overall
            if ratio > config.vol_multiple:
                reasons[k].append(f"median vol {ratio:.2f}x the all-window median")
        details = {"reasons": reasons[k], "worst_span_return": worst[k],
                   "median_daily_vol": med_vol[k], "vol_ratio": ratio,
                   "config": config.model_dump()}
        status = CheckStatus.WARN if reasons[k] else CheckStatus.PASS
        results.append(make_result(NAME, status, details, window=k))
    return [k for k in windows if reasons[k]], results


def metrics_with_and_without(returns: pd.DataFrame, quarantined: Iterable[int],
                             periods_per_year: float) -> dict[str, dict[str, Any]]:
    """Per cell: ``all`` (metrics of the whole TWR series) and ``ex_quarantine`` (metrics of the
    series with the quarantined windows' bars removed and the rest stitched in date order; None when
    every window is quarantined), plus ``n_bars_excluded`` and ``windows_excluded``.
    ``returns``: ``returns.parquet`` rows of cells of one sweep setting."""
    df = check_frame(returns, "returns.parquet")
    q = {int(k) for k in quarantined}
    out: dict[str, dict[str, Any]] = {}
    for cell_id, g in df.groupby("cell_id", sort=True):
        g = g.sort_values("date", kind="stable")
        keep = ~g["window"].isin(q).to_numpy()
        r = g["return"].to_numpy(dtype=np.float64)
        out[str(cell_id)] = {
            "all": compute_metrics(r, periods_per_year),
            "ex_quarantine": compute_metrics(r[keep], periods_per_year) if keep.any() else None,
            "n_bars_excluded": int((~keep).sum()),
            "windows_excluded": sorted(q & set(g["window"].astype(int))),
        }
    return out
