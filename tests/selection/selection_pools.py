"""Seeded synthetic inputs for the v4 selection tests (not a test module).

``make_view`` builds a ``PastView``: a factor-structured close panel (so clusters exist; optional
AR(1) returns so that entropy sits below noise) and a pool of candidates that pass every veto by
default (liquid perpetuals, direction-consistent ratings, ADX 25, moderate ROC and Volatility.D),
one per asset, LONG or SHORT, spread over sectors. Tests then edit pool rows (``with_pool``) to
trigger the rule under test.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from contracts.candidate import CANDIDATE_COLUMNS
from contracts.window import Window
from market.calendar import CRYPTO
from market.view import PastView

SECTORS = ("L1", "DeFi", "Meme", "AI", "Infra", "Gaming", "Oracle", "Privacy")


def make_returns(seed: int, n_assets: int, n_bars: int, n_factors: int = 4, ar: float = 0.0,
                 vol: float = 0.02, drift: float = 0.0005) -> np.ndarray:
    """Daily simple returns (bars x assets) from a factor model, optional AR(1) noise."""
    rng = np.random.default_rng(seed)
    fac = rng.normal(0.0, vol, (n_bars, n_factors))
    group = np.arange(n_assets) % n_factors
    load = np.zeros((n_assets, n_factors))
    load[np.arange(n_assets), group] = rng.uniform(0.6, 1.2, n_assets)
    eps = rng.normal(0.0, vol, (n_bars, n_assets))
    if ar:
        for t in range(1, n_bars):
            eps[t] += ar * eps[t - 1]
    r = fac @ load.T + eps + drift * rng.choice([-1.0, 1.0], n_assets)
    return np.clip(r, -0.4, 0.4)


def make_view(seed: int = 0, n_assets: int = 40, n_bars: int = 300, train: int = 250,
              n_factors: int = 4, ar: float = 0.0, short_share: float = 0.3,
              n_sectors: int = 5, lookback: int | None = None) -> PastView:
    """A view whose cut-off is the last bar; train slice = the last ``train`` bars."""
    r = make_returns(seed, n_assets, n_bars, n_factors, ar)
    closes = 100.0 * np.cumprod(1.0 + r, axis=0)
    idx = pd.date_range("2022-01-01", periods=n_bars, freq="D", tz="UTC")
    syms = [f"A{j:03d}USDT.P" for j in range(n_assets)]
    panel = pd.DataFrame(closes, index=idx, columns=syms)
    rng = np.random.default_rng(seed + 1)
    direction = np.where(rng.random(n_assets) < short_share, "SHORT", "LONG")
    sign = np.where(direction == "SHORT", -1.0, 1.0)
    pool = pd.DataFrame({
        "symbol": syms,
        "exchange": "BINANCE",
        "asset_type": "perp",
        "sector": [SECTORS[j % n_sectors] for j in range(n_assets)],
        "logic": "trend",
        "direction": direction,
        "Value.Traded": rng.uniform(1e8, 1e9, n_assets),
        "Recommend.All": sign * rng.uniform(0.2, 0.9, n_assets),
        "Recommend.MA": sign * rng.uniform(0.0, 0.9, n_assets),
        "ROC": rng.uniform(-20.0, 20.0, n_assets),
        "Volatility.D": rng.uniform(2.0, 8.0, n_assets),
        "ADX": rng.uniform(20.0, 40.0, n_assets),
        "snapshot_date": idx[-1],
    })[list(CANDIDATE_COLUMNS)]
    window = Window(index=0, cutoff=n_bars - 1, train_start=n_bars - train, step_size=20, n_test=20)
    return PastView(window=window, closes=panel, pool=pool, calendar=CRYPTO)


def with_pool(view: PastView, pool: pd.DataFrame) -> PastView:
    """The same view with another pool."""
    return dataclasses.replace(view, pool=pool.reset_index(drop=True))


def with_closes(view: PastView, closes: pd.DataFrame) -> PastView:
    return dataclasses.replace(view, closes=closes)


def cid(view: PastView, row: int) -> str:
    """Candidate id of pool row ``row`` (generator symbols: A###USDT.P -> identity A###)."""
    p = view.pool.iloc[row]
    return f"{p['symbol'][:4]}_{p['logic']}_{p['direction']}"
