"""The volatility bands a run judges DRIFT against (``TournamentConfig.bands``), resolved from the data.

The product's bands (``audit.checks.VOL_BANDS``: MinVariance 0.35 ... MaxSharpe 0.90, annualised) are
crypto bands. On an exchange calendar ``auto`` scales them (and the DRIFT distance) by

    s = vol_EW / reference_vol,

``vol_EW`` the annualised volatility (``std(ddof=1) * sqrt(P)``) of the equal-weight portfolio of each
window's point-in-time candidate pool (the symbols of the snapshot as of the window's cut-off, every
candidate of the pool, before any engine's vetoes), rebalanced daily, over the base setting's test bars,
and ``reference_vol`` the product's equal-weight band (0.60). It is computed over the run's test span,
not before each cut-off: DRIFT is an ex-post flag on the realised volatility of those same bars, so its
yardstick is the pool's realised volatility over them (nothing here feeds a decision, so no look-ahead).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from audit.checks.vol_bands import DRIFT_THRESHOLD, VOL_BANDS, band_distance, scale_bands
from contracts.errors import DataError
from market.panel import simple_returns
from tournament.config import TournamentConfig
from tournament.market_io import Market


def pool_ew_vol(market: Market, windows: list, periods_per_year: float) -> tuple[float, int]:
    """Annualised vol of the daily equal-weight return of each window's pool over its test bars, and
    the number of bars used."""
    rets = simple_returns(market.closes)
    dates = market.closes.index
    parts = []
    for w in windows:
        pool = market.snapshots.pool_as_of(dates[w.cutoff])
        syms = sorted(set(pool["symbol"]) & set(rets.columns))
        if not syms:
            continue
        block = rets.iloc[w.test_start:w.test_end + 1][syms]
        parts.append(block.mean(axis=1, skipna=True))
    if not parts:
        raise DataError("volatility bands: no candidate of any window has prices: the pool's volatility is undefined")
    ew = pd.concat(parts).dropna().to_numpy(dtype=np.float64)
    if ew.size < 2:
        raise DataError("volatility bands: fewer than 2 test bars to measure the pool's volatility")
    return float(np.std(ew, ddof=1) * np.sqrt(periods_per_year)), int(ew.size)


def resolve_bands(cfg: TournamentConfig, market: Market, base_windows: list) -> dict[str, Any]:
    """The run's bands: ``{"mode", "bands": {profile: [lo, hi]}, "drift_threshold", "scale",
    "pool_ew_vol", "n_bars", "why"}`` (what ``bootstrap.json["bands"]`` records and the report states)."""
    b = cfg.bands
    base = dict(b.absolute) if b.absolute else dict(VOL_BANDS)
    calendar = market.calendar.name
    mode = b.mode if b.mode != "auto" else ("scaled" if calendar == "exchange" else "absolute")
    out: dict[str, Any] = {"mode": mode, "calendar": calendar, "configured_mode": b.mode,
                           "reference_vol": b.reference_vol, "scale": 1.0, "pool_ew_vol": None, "n_bars": None}
    threshold = b.drift_threshold if b.drift_threshold is not None else DRIFT_THRESHOLD
    if mode == "scaled":
        vol, n = pool_ew_vol(market, base_windows, market.calendar.periods_per_year)
        scale = vol / b.reference_vol
        base = scale_bands(scale, base)
        threshold *= scale
        out.update(scale=scale, pool_ew_vol=vol, n_bars=n,
                   why=(f"{calendar} calendar: the {'product' if not b.absolute else 'configured'} bands scaled by "
                        f"{scale:.3f} = pool equal-weight volatility {vol:.3f} / {b.reference_vol:.2f} (the product's "
                        f"equal-weight band), measured over the base setting's {n} test bars; DRIFT distance "
                        f"{threshold:.3f}"))
    else:
        out["why"] = (f"{calendar} calendar: {'the product' if not b.absolute else 'configured'}'s absolute bands"
                      f"{' (crypto)' if not b.absolute else ''}, DRIFT distance {threshold:.3f}"
                      + ("" if b.mode != "auto" else " (mode auto)"))
    out["bands"] = {p.value if hasattr(p, "value") else str(p): [float(lo), float(hi)] for p, (lo, hi) in base.items()}
    out["drift_threshold"] = float(threshold)
    return out


def band_text(band: tuple[float, float]) -> str:
    lo, hi = band
    return f"{lo:.2f}" if lo == hi else f"{lo:.2f}-{hi:.2f}"


def apply_to_matrix(matrix: pd.DataFrame, bands: dict[str, Any]) -> pd.DataFrame:
    """``vol_band``, ``band_distance`` and ``drift`` of the matrix under the run's bands."""
    out = matrix.copy()
    b = bands["bands"]
    out["vol_band"] = [band_text(tuple(b[str(p)])) for p in out["profile"].astype(str)]
    out["band_distance"] = [band_distance(float(v), tuple(b[str(p)]))
                            for p, v in zip(out["profile"].astype(str), out["annual_volatility"])]
    out["drift"] = out["band_distance"] > bands["drift_threshold"]
    return out
