"""Seeded synthetic pools for the v3.4 legacy and parity tests (a generator, plus its own checks).

``make_view(seed, ...)`` builds a ``PastView`` with a factor-structured price panel (so clusters
exist), LONG and SHORT candidates, duplicate venues (``XUSDT.P`` and ``XUSDT``), late listings (NaN
before listing), concentrated sectors, missing scanner fields and liquidity near the floors. The
``strict`` knob makes sentiment/ADX/efficiency vetoes frequent so that HTR reaches stages 3 and 4; a low
``factor_share`` gives many uncorrelated assets, hence many clusters (stage 3 forcing matters);
``ar`` > 0 makes returns persistent, so the pool is not noise-dominated (v4 does not harden).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from contracts.candidate import CANDIDATE_COLUMNS
from contracts.window import Window
from market.calendar import CRYPTO
from market.view import PastView

SECTORS = ("L1", "DeFi", "Meme", "AI", "Infra")


def make_view(seed: int, n_assets: int = 20, n_bars: int = 200, train: int | None = None,
              strict: float = 0.3, short_share: float = 0.4, late_share: float = 0.15,
              n_sectors: int = 5, missing_share: float = 0.05, dup_share: float = 0.2,
              factor_share: float = 0.6, ar: float = 0.0) -> PastView:
    """A past-only view over ``n_bars`` daily bars (crypto calendar) and a pool on ``n_assets`` assets."""
    rng = np.random.default_rng(seed)
    n_fac = int(rng.integers(1, 5))
    fac = rng.normal(0.0, 0.02, (n_bars, n_fac)) + rng.normal(0.0, 0.002, n_fac)
    load = rng.normal(0.0, 1.0, (n_assets, n_fac)) * (rng.random((n_assets, n_fac)) < factor_share)
    r = fac @ load.T + rng.normal(0.0, 0.02, (n_bars, n_assets)) * rng.uniform(0.3, 2.0, n_assets)
    for t in range(1, n_bars):  # AR(1) persistence: orderly series, low entropy percentiles
        r[t] += ar * r[t - 1]
    r = np.clip(r, -0.5, 0.5)
    closes = 100.0 * np.cumprod(1.0 + r, axis=0)
    names, cols = [], {}
    for j in range(n_assets):
        base = f"A{j:02d}"
        c = closes[:, j].copy()
        if rng.random() < late_share:
            c[: int(rng.integers(n_bars // 4, n_bars - 10))] = np.nan
        cols[f"{base}USDT.P"] = c
        names.append(base)
        if rng.random() < dup_share:  # a spot venue of the same identity
            cols[f"{base}USDT"] = c * (1.0 + rng.normal(0.0, 0.001, n_bars))
    idx = pd.date_range("2024-01-01", periods=n_bars, freq="D", tz="UTC")
    panel = pd.DataFrame(cols, index=idx)
    rows = []
    for sym in panel.columns:
        for _ in range(int(rng.integers(1, 3))):
            short = rng.random() < short_share
            d = -1.0 if short else 1.0
            rec = {
                "symbol": sym, "exchange": "BINANCE",
                "asset_type": "perp" if sym.endswith(".P") else "spot",
                "sector": SECTORS[int(rng.integers(0, n_sectors))],
                "logic": ["rating", "trend", "mom", "rev"][int(rng.integers(0, 4))],
                "direction": "SHORT" if short else "LONG",
                "Value.Traded": float(10 ** rng.uniform(7.0, 9.5)),
                "Recommend.All": float(np.clip(d * rng.uniform(-strict, 1.0), -1, 1)),
                "Recommend.MA": float(rng.uniform(-1, 1)),
                "ROC": float(rng.normal(0.0, 30.0)),
                "Volatility.D": float(rng.uniform(1.0, 15.0)),
                "ADX": float(rng.uniform(10.0 - 30.0 * strict, 50.0)),
                "snapshot_date": idx[-1],
            }
            for f in ("Recommend.All", "ADX", "Volatility.D", "ROC", "Recommend.MA"):
                if rng.random() < missing_share:
                    rec[f] = np.nan
            if rng.random() < missing_share / 2:
                rec["sector"] = None
            rows.append(rec)
    pool = pd.DataFrame(rows, columns=list(CANDIDATE_COLUMNS))
    t = n_bars - 1 if train is None else train
    window = Window(index=0, cutoff=n_bars - 1, train_start=n_bars - t, step_size=5, gap=1, n_test=5)
    return PastView(window=window, closes=panel, pool=pool, calendar=CRYPTO)


def test_generator_is_seeded_and_past_only():
    a, b = make_view(3), make_view(3)
    pd.testing.assert_frame_equal(a.closes, b.closes)
    pd.testing.assert_frame_equal(a.pool, b.pool)
    assert a.closes.index[-1] == a.cutoff_date
    assert set(a.pool["direction"]) == {"LONG", "SHORT"}
