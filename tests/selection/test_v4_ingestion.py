"""Ingestion: deduplication by identity with the liquidity-floor venue rule, depth cap, drops, ids."""
from __future__ import annotations

import numpy as np
import pandas as pd

from contracts.atom import StrategyAtom
from market.entropy import EntropyNullCache
from selection.config import SelectionConfig
from selection.pipeline.context import SelectionContext
from selection.pipeline.ingestion import DiscoveryProvider
from selection.pipeline.orchestrator import run_stage
from tests.selection.selection_pools import make_view, with_closes, with_pool

CFG = SelectionConfig(challengers=())


def _ingest(view, config=CFG):
    ctx = SelectionContext(view=view, config=config, null_cache=EntropyNullCache(n_series=100))
    return run_stage(DiscoveryProvider(config), ctx)


def _venues(view, rows):
    """Add columns for extra venues of asset 0 (same prices) and pool rows for them."""
    closes = view.closes.copy()
    for sym in rows["symbol"]:
        closes[sym] = closes.iloc[:, 0]
    pool = pd.concat([view.pool, rows], ignore_index=True)
    return with_pool(with_closes(view, closes), pool)


def _row(view, **kw):
    r = view.pool.iloc[[0]].copy()
    for k, v in kw.items():
        r[k] = v
    return r


def test_venue_that_passes_its_floor_beats_higher_volume():
    view = make_view(seed=1, n_assets=5)
    pool = view.pool.copy()
    pool.loc[0, "Value.Traded"] = 40e6  # perp A000USDT.P fails its $50M floor
    rows = _row(view, symbol="A000USDT", asset_type="spot", **{"Value.Traded": 30e6})  # passes $20M
    ctx = _ingest(_venues(with_pool(view, pool), rows))
    assert ctx.raw_pool.loc["A000_trend_" + pool.loc[0, "direction"], "symbol"] == "A000USDT"
    assert {"id": "A000_trend_" + pool.loc[0, "direction"], "symbol": "A000USDT.P",
            "reason": "duplicate:venue"} in ctx.params["dropped"]


def test_highest_volume_when_no_venue_passes():
    view = make_view(seed=1, n_assets=5)
    pool = view.pool.copy()
    pool.loc[0, "Value.Traded"] = 40e6
    rows = _row(view, symbol="A000-USD", asset_type="spot", **{"Value.Traded": 10e6})
    ctx = _ingest(_venues(with_pool(view, pool), rows))
    assert "A000USDT.P" in set(ctx.raw_pool["symbol"]) and "A000-USD" not in set(ctx.raw_pool["symbol"])


def test_duplicate_records_and_directions_are_separate_candidates():
    view = make_view(seed=2, n_assets=4)
    pool = view.pool.copy()
    dup = pool.iloc[[1]].copy()
    dup["Value.Traded"] = 1.0  # a worse copy of the same (symbol, logic, direction)
    other = pool.iloc[[1]].copy()
    other["direction"] = "SHORT" if pool.loc[1, "direction"] == "LONG" else "LONG"
    ctx = _ingest(with_pool(view, pd.concat([pool, dup, other], ignore_index=True)))
    assert len(ctx.raw_pool) == 5
    assert sum(d["reason"] == "duplicate:record" for d in ctx.params["dropped"]) == 1
    assert ctx.raw_pool.loc[ctx.raw_pool["symbol"] == pool.loc[1, "symbol"], "Value.Traded"].min() > 1.0


def test_depth_cap_keeps_top_100_by_value_traded():
    view = make_view(seed=3, n_assets=130, short_share=0.0)
    ctx = _ingest(view)
    assert len(ctx.raw_pool) == 100
    kept = set(ctx.raw_pool["symbol"])
    top = set(view.pool.sort_values("Value.Traded", ascending=False)["symbol"][:100])
    assert kept == top
    assert sum(d["reason"] == "depth_cap" for d in ctx.params["dropped"]) == 30


def test_missing_or_invalid_prices_are_dropped_with_a_reason():
    view = make_view(seed=4, n_assets=6)
    pool = view.pool.copy()
    pool.loc[0, "symbol"] = "NOPRICEUSDT"
    closes = view.closes.copy()
    closes.iloc[:, 1] = np.nan  # never traded up to the cut-off
    closes.iloc[100, 2] = np.nan  # a gap between first and last close
    closes.iloc[50, 3] = 0.0  # a 0 followed by more prices
    ctx = _ingest(with_pool(with_closes(view, closes), pool))
    reasons = {d["symbol"]: d["reason"] for d in ctx.params["dropped"]}
    syms = view.pool["symbol"]
    assert reasons == {"NOPRICEUSDT": "no_prices", syms[1]: "no_prices", syms[2]: "invalid_prices",
                       syms[3]: "invalid_prices"}
    assert len(ctx.raw_pool) == 2


def test_delisted_before_the_train_slice_stays_and_is_hard_vetoed():
    """SELECTION_SPEC 1 drops only missing or invalid prices: a symbol whose closes end before the
    train slice stays in the pool (so it counts in the rank mappings) and gets history/survival."""
    from selection.pipeline.orchestrator import prepare
    view = make_view(seed=4, n_assets=6)
    closes = view.closes.copy()
    closes.iloc[30:, 1] = np.nan  # last close at bar 29; train slice starts at bar 50
    ctx = prepare(with_closes(view, closes), CFG, EntropyNullCache(n_series=100))
    cid = ctx.raw_pool.index[ctx.raw_pool["symbol"] == view.pool.loc[1, "symbol"]][0]
    assert ctx.feature_store.at[cid, "survival"] == 0.0
    assert ctx.vetoes.loc[cid, "history"] and ctx.vetoes.loc[cid, "survival"]
    assert cid not in ctx.clusters.labels.index


def test_ids_are_atom_ids_and_short_returns_are_negated():
    view = make_view(seed=5, n_assets=8, short_share=0.5)
    ctx = _ingest(view)
    for cid, row in ctx.raw_pool.iterrows():
        assert cid == StrategyAtom.make_id(row["identity"], row["logic"], row["direction"])
        r = view.closes[row["symbol"]].pct_change().to_numpy()[-250:]
        np.testing.assert_array_equal(ctx.returns[cid].to_numpy(), row["d"] * r)
    assert (ctx.raw_pool["d"] == -1).sum() == (view.pool["direction"] == "SHORT").sum()
    assert list(ctx.raw_pool.index) == sorted(ctx.raw_pool.index)


def test_invalid_logic_dropped_and_missing_direction_kept_for_the_veto():
    view = make_view(seed=6, n_assets=5)
    pool = view.pool.copy()
    pool["logic"] = pool["logic"].astype(object)
    pool.loc[0, "logic"] = "magic"
    pool["direction"] = pool["direction"].astype(object)
    pool.loc[1, "direction"] = None
    ctx = _ingest(with_pool(view, pool))
    assert any(d["reason"] == "invalid:logic" for d in ctx.params["dropped"])
    assert "A001_trend_NA" in ctx.raw_pool.index


def _deduplicate_frames(df, closes, config, dropped):
    """The frame-by-frame implementation of ``deduplicate`` (before its rewrite on row positions,
    e53a33c), kept as the reference of the rewrite."""
    from selection.pipeline.ingestion import _LOGICS, _vt_key, liquidity_floor, price_faults

    def _drop(df, keep, reason, dropped):
        gone = df.loc[~keep]
        dropped.extend({"id": i, "symbol": s, "reason": reason}
                       for i, s in zip(gone["id"].tolist(), gone["symbol"].tolist()))
        return df.loc[keep]


    df = _drop(df, df["logic"].isin(_LOGICS).to_numpy(), "invalid:logic", dropped)
    has_col = df["symbol"].isin(closes.columns).to_numpy()
    df = _drop(df, has_col, "no_prices", dropped)
    syms = list(pd.unique(df["symbol"]))
    empty, bad = price_faults(closes[syms].to_numpy(dtype=np.float64))
    empty_s, bad_s = dict(zip(syms, empty.tolist())), dict(zip(syms, bad.tolist()))
    df = _drop(df, ~df["symbol"].map(empty_s).to_numpy(dtype=bool), "no_prices", dropped)
    df = _drop(df, ~df["symbol"].map(bad_s).to_numpy(dtype=bool), "invalid_prices", dropped)
    dir_key = df["direction"].fillna("NA")
    df = df.assign(_vt=_vt_key(df), _dir=dir_key, _ex=df["exchange"].astype(object).fillna("").astype(str))
    df = df.sort_values(["symbol", "logic", "_dir", "_vt", "_ex"], kind="mergesort")
    first = ~df.duplicated(["symbol", "logic", "_dir"], keep="first").to_numpy()
    df = _drop(df, first, "duplicate:record", dropped)
    passes = pd.to_numeric(df["Value.Traded"], errors="coerce").to_numpy() >= liquidity_floor(
        df["asset_type"], config)
    df = df.assign(_fail=(~passes).astype(np.int8))
    df = df.sort_values(["identity", "logic", "_dir", "_fail", "_vt", "symbol"], kind="mergesort")
    first = ~df.duplicated(["identity", "logic", "_dir"], keep="first").to_numpy()
    df = _drop(df, first, "duplicate:venue", dropped)
    df = df.sort_values(["logic", "_dir", "_vt", "id"], kind="mergesort")
    rank = df.groupby(["logic", "_dir"], sort=False).cumcount().to_numpy()
    df = _drop(df, rank < config.depth_cap, "depth_cap", dropped)
    df = df.drop(columns=["_vt", "_dir", "_ex", "_fail"]).sort_values("id", kind="mergesort")
    return df.set_index("id", drop=False).rename_axis("candidate")


def test_deduplicate_equals_the_frame_by_frame_implementation():
    """Random pools with duplicate records, several venues per identity, tied and missing
    Value.Traded, missing exchanges/directions, invalid logics, faulty and missing prices and a
    small depth cap: the same kept frame (values, dtypes, index, column order) and the same drops
    in the same order."""
    from selection.pipeline.ingestion import deduplicate, normalise_pool

    rng = np.random.default_rng(11)
    reasons: set[str] = set()
    for seed in range(12):
        view = make_view(seed=seed, n_assets=12)
        closes = view.closes.copy()
        closes.iloc[5, 3] = np.nan  # a gap: invalid_prices
        closes.iloc[:, 4] = np.nan  # no close at all: no_prices
        base = view.pool
        pool = base.sample(n=3 * len(base), replace=True, random_state=seed).reset_index(drop=True)
        k = len(pool)
        vt = rng.choice([np.nan, 1e6, 22e6, 25e6, 40e6, 60e6, 60e6, 2e8], size=k)
        pool["Value.Traded"] = vt
        venues = np.array([s.replace("USDT.P", "USDT") if rng.random() < 0.4 else s for s in pool["symbol"]])
        pool["symbol"] = venues
        pool["asset_type"] = np.where(np.char.endswith(venues.astype(str), ".P"), "perp", "spot")
        pool["exchange"] = rng.choice(["BINANCE", "BYBIT", "OKX"], size=k)
        pool.loc[rng.random(k) < 0.1, "exchange"] = None
        pool.loc[rng.random(k) < 0.05, "direction"] = None
        pool.loc[rng.random(k) < 0.05, "logic"] = "bogus"
        for sym in set(pool["symbol"]) - set(closes.columns):
            if rng.random() < 0.7:
                closes[sym] = closes.iloc[:, 0]
        cfg = SelectionConfig(challengers=(), depth_cap=int(rng.integers(2, 6)))
        norm = normalise_pool(pool)
        d_new, d_ref = [], []
        new = deduplicate(norm.copy(), closes, cfg, d_new)
        ref = _deduplicate_frames(norm.copy(), closes, cfg, d_ref)
        pd.testing.assert_frame_equal(new, ref, check_exact=True)
        assert list(new.columns) == list(ref.columns) and new.index.equals(ref.index)
        assert d_new == d_ref
        reasons |= {d["reason"] for d in d_ref}
    assert reasons == {"duplicate:record", "duplicate:venue", "depth_cap", "no_prices",
                       "invalid_prices", "invalid:logic"}  # every step was exercised


def test_direction_adjusted_returns_read_only_the_last_train_rows():
    """The returns of the last ``train_rows + 1`` closes equal those of the whole history cut to the
    last ``train_rows`` rows, bit for bit (missing closes, a bust to 0, listings inside the slice,
    ``train_rows`` up to the whole panel)."""
    from market.panel import simple_returns
    from selection.pipeline.ingestion import direction_adjusted_returns, normalise_pool

    view = make_view(seed=9, n_assets=30)
    closes = view.closes.copy()
    closes.iloc[-40:-30, 2] = np.nan
    closes.iloc[-5, 3] = 0.0
    closes.iloc[: len(closes) - 20, 4] = np.nan
    pool = normalise_pool(view.pool).set_index("id", drop=False)
    for rows in (2, 20, 120, len(closes) - 1, len(closes)):
        got = direction_adjusted_returns(closes, pool, rows)
        syms = list(pd.unique(pool["symbol"]))
        r = simple_returns(closes[syms]).to_numpy()[-rows:]
        ref = r[:, [syms.index(s) for s in pool["symbol"]]] * pool["d"].to_numpy()[None, :]
        assert got.shape == (rows, len(pool)) and got.index.equals(closes.index[-rows:])
        assert np.array_equal(got.to_numpy(), ref, equal_nan=True)
