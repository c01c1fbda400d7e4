"""Volatility bands (DESIGN section 4): realised annualised volatility of a cell's TWR series vs its
risk profile's band.

Bands (annualised, absolute, fractions): MinVariance 0.35, MarketNeutral 0.35, HRP [0.45, 0.50],
EqualWeight 0.60, MaxSharpe 0.90, Barbell 0.50. ``distance`` is 0 inside a range, else
``|vol - nearest edge|``; the cell is flagged ``DRIFT`` (status ``warn``: a flag about the strategy's risk, not a broken
integrity property, so it never makes a run's audit fail) when ``distance > 0.25``.
Realised volatility is ``std(ddof=1) * sqrt(P)`` of the daily simple returns (``audit.metrics``).
These are the product's crypto bands; a run may give its own (``band=``, ``drift_threshold=``) or scale
them (``scale_bands``): on an exchange calendar the tournament scales them by the ratio of the pool's
equal-weight volatility to the product's equal-weight band 0.60 (``tournament.bands``).
Per-window realised vols are computed and reported in ``details["per_window"]``, never flagged
(``None`` for a window with fewer than 2 bars).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from audit.checks.result import CheckResult, CheckStatus, make_result
from audit.metrics import _as_returns, _check_p, _vol
from contracts.enums import Profile
from contracts.errors import DataError

NAME = "volatility_band"
DRIFT_THRESHOLD = 0.25

VOL_BANDS: dict[Profile, tuple[float, float]] = {
    Profile.MIN_VARIANCE: (0.35, 0.35),
    Profile.MARKET_NEUTRAL: (0.35, 0.35),
    Profile.HRP: (0.45, 0.50),
    Profile.EQUAL_WEIGHT: (0.60, 0.60),
    Profile.MAX_SHARPE: (0.90, 0.90),
    Profile.BARBELL: (0.50, 0.50),
}


def band_distance(vol: float, band: tuple[float, float]) -> float:
    """0 inside ``[lo, hi]``, else the absolute distance to the nearest edge."""
    lo, hi = band
    if lo <= vol <= hi:
        return 0.0
    return float(lo - vol) if vol < lo else float(vol - hi)


def scale_bands(scale: float, bands: dict[Profile, tuple[float, float]] | None = None
                ) -> dict[Profile, tuple[float, float]]:
    """Every band multiplied by ``scale`` (> 0): the same risk ordering on a calmer or wilder market."""
    if not (scale > 0 and np.isfinite(scale)):
        raise DataError(f"band scale must be a positive finite number, got {scale!r}")
    return {p: (lo * scale, hi * scale) for p, (lo, hi) in (bands or VOL_BANDS).items()}


def check_volatility_band(cell_id: str, profile: Profile | str, returns: Any,
                          periods_per_year: float, windows: Any = None, *,
                          drift_threshold: float = DRIFT_THRESHOLD,
                          band: tuple[float, float] | None = None) -> CheckResult:
    """Band check of one cell's TWR series.

    ``returns``: the cell's daily simple returns; ``windows``: optional window number per return
    (same length) for the per-window report. Status ``warn`` with ``details["flag"] == "DRIFT"``
    when the distance exceeds ``drift_threshold``; ``pass`` otherwise. ``band``: the run's band for the
    profile (default: the product's ``VOL_BANDS``).
    """
    prof = Profile(profile)
    p = _check_p(periods_per_year)
    r = _as_returns(returns)
    vol, flag = _vol(r, p)
    band = tuple(band) if band is not None else VOL_BANDS[prof]
    dist = band_distance(vol, band)
    per_window: dict[str, float | None] = {}
    if windows is not None:
        w = np.asarray(windows).ravel()
        if w.shape != r.shape:
            raise DataError(f"cell {cell_id}: {w.size} window labels for {r.size} returns")
        for k in sorted(set(w.tolist())):
            wr = r[w == k]
            per_window[str(k)] = _vol(wr, p)[0] if wr.size >= 2 else None
    drift = dist > drift_threshold
    details = {"profile": prof.value, "realised_vol": vol, "band": list(band), "distance": dist,
               "drift_threshold": drift_threshold, "flag": "DRIFT" if drift else None,
               "vol_flag": flag, "periods_per_year": p, "per_window": per_window}
    return make_result(NAME, CheckStatus.WARN if drift else CheckStatus.PASS, details,
                       cell_id=cell_id)
