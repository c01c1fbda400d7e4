"""Every veto fires beyond its threshold, not just inside it, and fires as ``missing:<feature>`` on NaN.

The thresholds are the spec's literals (SELECTION_SPEC section 5); "just inside" is the threshold
itself where the rule is a strict inequality, or one step past it where the rule includes it.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from market.entropy import EntropyNullCache
from selection.config import SelectionConfig
from selection.pipeline.orchestrator import prepare, run_stage
from selection.pipeline.policy import SelectionController
from selection.pipeline.vetoes import (
    hard_vetoes, hardening_test, soft_vetoes, stage_thresholds,
)
from tests.selection.selection_pools import make_view, with_pool

CFG = SelectionConfig(challengers=())
TRAIN = 250


@pytest.fixture(scope="module")
def base():
    view = make_view(seed=11, n_assets=10)
    ctx = prepare(view, CFG, EntropyNullCache(n_series=500))
    return ctx


def _hard(ctx, fs=None, pool=None, config=CFG):
    return hard_vetoes(fs if fs is not None else ctx.feature_store,
                       pool if pool is not None else ctx.raw_pool, config, TRAIN)


def _fired(flags: pd.DataFrame, cid: str) -> set[str]:
    row = flags.loc[cid]
    return {k for k, v in row.items() if v}


# (table, column, reason, missing reason, bad value, just-inside value)
HARD_CASES = [
    ("fs", "n_history", "history", None, 59.0, 60.0),  # min(60, 250) valid closes
    ("fs", "survival", "survival", "missing:survival", 0.0999, 0.1),
    ("fs", "kurtosis", "kurtosis", "missing:kurtosis", 20.0001, 20.0),
    ("fs", "volatility", "volatility", "missing:volatility", 2.5001, 2.5),  # 250 % annualised
    ("fs", "ROC_raw", "roc", "missing:ROC", 100.01, 100.0),
    ("fs", "ROC_raw", "roc", "missing:ROC", -80.01, -80.0),
    ("fs", "Volatility.D", "volatility_d", "missing:Volatility.D", 100.01, 100.0),
    ("pool", "Value.Traded", "liquidity", "missing:Value.Traded", 49_999_999.0, 50_000_000.0),
]


@pytest.mark.parametrize("table,col,reason,missing,bad,ok", HARD_CASES)
def test_hard_veto_threshold_and_nan(base, table, col, reason, missing, bad, ok):
    cid = base.raw_pool.index[0]
    assert not _fired(_hard(base), cid)  # the generator's candidates pass
    for value, expect in ((bad, {reason}), (ok, set()), (math.nan, {missing} if missing else None)):
        if expect is None:
            continue
        fs, pool = base.feature_store.copy(), base.raw_pool.copy()
        (fs if table == "fs" else pool).loc[cid, col] = value
        assert _fired(_hard(base, fs, pool), cid) == expect, (col, value)


def test_spot_liquidity_floor_is_20m(base):
    cid = base.raw_pool.index[0]
    pool = base.raw_pool.copy()
    pool.loc[cid, "asset_type"] = "spot"
    pool.loc[cid, "Value.Traded"] = 20_000_000.0
    assert not _fired(_hard(base, pool=pool), cid)
    pool.loc[cid, "Value.Traded"] = 19_999_999.0
    assert _fired(_hard(base, pool=pool), cid) == {"liquidity"}


@pytest.mark.parametrize("col", ["sector", "asset_type", "direction"])
def test_metadata_missing_is_hard(base, col):
    cid = base.raw_pool.index[1]
    pool = base.raw_pool.copy()
    pool[col] = pool[col].astype(object)
    pool.loc[cid, col] = None
    assert f"missing:{col}" in _fired(_hard(base, pool=pool), cid)


def test_tail_vetoes_off_in_v34_settings(base):
    cid = base.raw_pool.index[0]
    fs = base.feature_store.copy()
    fs.loc[cid, ["kurtosis", "volatility", "ROC_raw", "Volatility.D"]] = [50.0, 9.0, 500.0, 300.0]
    assert _fired(_hard(base, fs=fs), cid) == {"kurtosis", "volatility", "roc", "volatility_d"}
    assert not _fired(_hard(base, fs=fs, config=CFG.v34_settings()), cid)


SOFT_CASES = [
    ("Recommend.All", "sentiment", "missing:Recommend.All", 0.1, 0.1001),  # must exceed 0.1
    ("entropy", "entropy", "missing:entropy", 0.9001, 0.9),
    ("efficiency", "efficiency", "missing:efficiency", 0.0499, 0.05),
    ("ADX", "adx", "missing:ADX", 9.99, 10.0),
]


@pytest.mark.parametrize("col,reason,missing,bad,ok", SOFT_CASES)
def test_soft_veto_threshold_and_nan(base, col, reason, missing, bad, ok):
    th = stage_thresholds(CFG, 1, CFG.entropy_max)
    cid = base.raw_pool.index[2]
    fs = base.feature_store.copy()
    fs.loc[cid, ["Recommend.All", "entropy", "entropy_raw", "efficiency", "ADX"]] = [0.5, 0.1, 0.5, 0.5, 30.0]
    assert not _fired(soft_vetoes(fs, th), cid)
    for value, expect in ((bad, {reason}), (ok, set()), (math.nan, {missing})):
        f = fs.copy()
        f.loc[cid, "entropy_raw" if col == "entropy" and math.isnan(value) else col] = value
        assert _fired(soft_vetoes(f, th), cid) == expect, (col, value)


def test_stage_thresholds_relax_once_and_cap_entropy():
    t1, t2, t4 = (stage_thresholds(CFG, k, 0.90) for k in (1, 2, 4))
    assert (t1.entropy_max, t1.efficiency_min, t1.adx_min) == (0.90, 0.05, 10.0)
    assert t2.entropy_max == 1.0  # 0.90 x 1.2 capped at 1.0: the entropy veto is off
    assert t2.efficiency_min == pytest.approx(0.04) and t2.adx_min == pytest.approx(8.0)
    same = ("sentiment_min", "entropy_max", "efficiency_min", "adx_min")
    assert [getattr(t4, f) for f in same] == [getattr(t2, f) for f in same]  # never compounds
    assert stage_thresholds(CFG, 2, 0.81).entropy_max == pytest.approx(0.972)  # hardened 0.81 x 1.2


def test_entropy_rule_off_at_one(base):
    fs = base.feature_store.copy()
    fs["entropy_raw"] = np.nan
    th = stage_thresholds(CFG, 2, 0.9)
    assert "missing:entropy" not in soft_vetoes(fs, th).columns


def test_soft_vetoes_fire_at_stage_1_not_at_stage_2_in_the_policy(base):
    """Efficiency 0.045 and ADX 9 are vetoed at stage 1 and admitted at stage 2 (x0.8)."""
    ids = list(base.raw_pool.index)
    fs = base.feature_store.copy()
    fs.loc[ids[0], "efficiency"] = 0.045
    fs.loc[ids[1], "ADX"] = 9.0
    ctx = base.model_copy(update={"feature_store": fs})
    c1 = run_stage(SelectionController(CFG, 1, "log_mps"), ctx)
    r1 = c1.winners["log_mps"].reasons
    assert "efficiency" in r1[ids[0]] and "adx" in r1[ids[1]]
    c2 = run_stage(SelectionController(CFG, 2, "log_mps"), c1)
    r2 = c2.winners["log_mps"].reasons
    for i in ids[:2]:
        assert not {"efficiency", "adx"} & set(r2.get(i, ()))


def test_hardening_test_critical_value():
    # 0.5 - 1.645 * sqrt(1/12) / sqrt(n): n = 100 -> 0.5 - 1.645 * 0.288675 / 10 = 0.452513
    noise, mean, crit = hardening_test(np.full(100, 0.46), 1.645)
    assert crit == pytest.approx(0.4525129, abs=1e-7) and noise and mean == pytest.approx(0.46)
    assert not hardening_test(np.full(100, 0.45), 1.645)[0]
    assert hardening_test(np.zeros(0), 1.645) == (False, 0.5, 0.5)


def test_pool_level_vetoes_reach_the_rejected_list():
    view = make_view(seed=12, n_assets=30)
    pool = view.pool.copy()
    pool.loc[0, "Value.Traded"] = 10e6
    pool.loc[1, "ADX"] = np.nan
    pool.loc[2, "Recommend.All"] = -pool.loc[2, "Recommend.All"]
    pool.loc[3, "ROC"] = 150.0
    pool.loc[4, "Volatility.D"] = np.nan
    from selection.registry import FeatureCache, run_window
    res = run_window(with_pool(view, pool), ["v4"], CFG, seed=0,
                     cache=FeatureCache(null_cache=EntropyNullCache(n_series=500)))["v4"]
    rej = {r.symbol: r for r in res.rejected}
    syms = list(pool["symbol"])
    assert "liquidity" in rej[syms[0]].reasons
    assert "missing:ADX" in rej[syms[1]].reasons
    assert "sentiment" in rej[syms[2]].reasons
    assert "roc" in rej[syms[3]].reasons
    assert "missing:Volatility.D" in rej[syms[4]].reasons
    won = {a.symbol for a in res.atoms}
    assert not won & set(syms[:5])


@pytest.mark.parametrize("dtype", [object, "str", "string"])
def test_missing_meta_equals_the_pandas_string_steps(dtype):
    """``_missing_meta`` strips strings in Python: the flags of ``isna | astype(str).str.strip() ==
    ''`` for missing, blank, padded and plain values, in object and string columns, and for a
    column holding non-strings (pandas' own steps)."""
    from selection.pipeline.vetoes import _missing_meta

    values = ["L1", "", "  ", " DeFi ", None, np.nan, "\t", "x", "\n ", "AI"]
    if dtype == "string":
        values = [pd.NA if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in values]
    col = pd.Series(pd.array(values, dtype=dtype))
    s = col.astype(object)
    ref = (s.isna() | (s.astype(str).str.strip() == "")).to_numpy()
    got = _missing_meta(col)
    assert got.dtype == bool and got.tolist() == ref.tolist()
    assert got.tolist() == [False, True, True, False, True, True, True, False, True, False]
    other = pd.Series([1.0, np.nan, "", 3], dtype=object)
    o = other.astype(object)
    assert _missing_meta(other).tolist() == (o.isna() | (o.astype(str).str.strip() == "")).to_numpy().tolist()
