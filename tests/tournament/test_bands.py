"""Volatility bands as configuration: absolute on the crypto calendar, scaled by the pool's equal-weight
volatility on the exchange calendar (the equity-style synthetic market), DRIFT following the bands used."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from audit.checks import VOL_BANDS
from contracts.enums import Profile
from contracts.errors import ConfigError
from tests.tournament.conftest import small_config
from tournament.bands import apply_to_matrix, pool_ew_vol, resolve_bands
from tournament.market_io import load_market
from tournament.run import schedules


def _market_and_windows(cfg):
    m = load_market(cfg.market)
    sched = schedules(cfg, len(m.closes.index))
    return m, sched[cfg.settings()[0].id]


def test_crypto_calendar_keeps_the_products_absolute_bands():
    cfg = small_config()
    m, wins = _market_and_windows(cfg)
    assert m.calendar.name == "crypto" and m.provenance["calendar_source"] == "inferred"
    b = resolve_bands(cfg, m, wins)
    assert b["mode"] == "absolute" and b["scale"] == 1.0 and b["drift_threshold"] == 0.25
    assert b["bands"] == {p.value: [lo, hi] for p, (lo, hi) in VOL_BANDS.items()}


def test_exchange_calendar_scales_by_the_pools_equal_weight_volatility():
    cfg = small_config(market={"synthetic_bars": 520, "synthetic_candidates": 48, "calendar": "exchange"})
    m, wins = _market_and_windows(cfg)
    assert m.calendar.periods_per_year == 252 and m.benchmark == "INDEX"
    assert (m.closes.index.day_of_week < 5).all()
    # independent recomputation: a plain loop over windows and days
    rets = m.closes.pct_change(fill_method=None)
    daily = []
    for w in wins:
        syms = [s for s in m.snapshots.pool_as_of(m.closes.index[w.cutoff])["symbol"].unique() if s in m.closes]
        for t in range(w.test_start, w.test_end + 1):
            x = rets.iloc[t][syms].to_numpy(dtype=float)
            x = x[np.isfinite(x)]
            if x.size:
                daily.append(x.mean())
    want = float(np.std(daily, ddof=1) * np.sqrt(252))
    vol, n = pool_ew_vol(m, wins, 252)
    assert n == len(daily) and vol == pytest.approx(want, rel=1e-12)
    b = resolve_bands(cfg, m, wins)
    s = want / 0.60
    assert b["mode"] == "scaled" and b["scale"] == pytest.approx(s, rel=1e-12)
    assert b["bands"]["equal_weight"] == pytest.approx([0.60 * s, 0.60 * s], rel=1e-12)
    assert b["drift_threshold"] == pytest.approx(0.25 * s, rel=1e-12)
    assert "scaled by" in b["why"]
    # a basket exactly as volatile as the pool sits inside the scaled equal-weight band
    mat = pd.DataFrame({"profile": ["equal_weight", "equal_weight"], "annual_volatility": [want, 0.60]})
    out = apply_to_matrix(mat, b)
    assert out["band_distance"].iloc[0] == pytest.approx(0.0, abs=1e-12) and not out["drift"].iloc[0]
    assert out["drift"].iloc[1] == (abs(0.60 - 0.60 * s) > 0.25 * s)


def test_configured_absolute_bands_and_validation():
    cfg = small_config(bands={"mode": "absolute", "absolute": {"min_variance": [0.05, 0.10]}, "drift_threshold": 0.02})
    m, wins = _market_and_windows(cfg)
    b = resolve_bands(cfg, m, wins)
    assert b["bands"] == {"min_variance": [0.05, 0.10]} and b["drift_threshold"] == 0.02
    with pytest.raises(ConfigError, match="bands.absolute"):
        small_config(bands={"absolute": {"min_variance": [0.3, 0.1]}})
    with pytest.raises(ConfigError, match="bands.modes"):
        small_config(bands={"modes": "absolute"})
    assert Profile.MIN_VARIANCE in cfg.bands.absolute


def test_equity_style_run_flags_drift_against_the_scaled_bands(tmp_path):
    from tournament.run import run_tournament

    cfg = small_config(market={"synthetic_bars": 520, "synthetic_candidates": 48, "calendar": "exchange"},
                       engines=["raw"], profiles=["equal_weight", "min_variance"], backends=["native"])
    out = run_tournament(cfg, tmp_path)
    b = json.loads((out.run_dir / "bootstrap.json").read_text())["bands"]
    mat = pd.read_csv(out.run_dir / "performance_matrix.csv")
    assert b["mode"] == "scaled"
    recs = [json.loads(x) for x in (out.run_dir / "audit.jsonl").read_text().splitlines()]
    flags = {r["data"]["cell_id"]: r["data"]["details"] for r in recs
             if r["type"] == "check" and r["data"]["name"] == "volatility_band"}
    for row in mat.itertuples():
        lo, hi = b["bands"][row.profile]
        d = flags[row.cell_id]
        assert d["band"] == [lo, hi] and d["drift_threshold"] == pytest.approx(b["drift_threshold"])
        assert (d["flag"] == "DRIFT") == bool(row.drift)
