"""Non-finite scanner fields become missing in both engines (issue 15), as a property.

The pools of the parity property (``test_parity``) get ``inf``, ``-inf`` or ``nan`` written into
random scanner fields of random records. The shared ingestion boundary (``market.view.PastView``)
turns an infinite field into NaN, so for every pool: (i) the whole parity contract still holds
(``check_parity``: v3.4 equals v4 with v3.4's settings, features, scores, winners, rejected
candidates with reasons, ``htr_stage``); (ii) every kept record with a corrupted ``Value.Traded``,
``Recommend.All`` or ``ADX`` is rejected in both engines with ``missing:<field>`` among its reasons,
unless it won through stage-3 forcing or the stage-4 fallback (which ignore soft vetoes); (iii) every score is finite
and not every alpha is 0; (iv) with v4's default tail vetoes a corrupted ``ROC`` or
``Volatility.D`` is a hard veto ``missing:<field>``. 40 examples by default, 200 under ``slow``.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from contracts.errors import ToolkitError
from selection.config import SelectionConfig
from selection.registry import FeatureCache, run_window

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_parity import CACHE, CASES, _view, check_parity, pools  # noqa: E402

FIELDS = ("Value.Traded", "Recommend.All", "Recommend.MA", "ROC", "Volatility.D", "ADX")
VETOED = {"Value.Traded": "missing:Value.Traded", "Recommend.All": "missing:Recommend.All",
          "ADX": "missing:ADX"}
TAIL = {"ROC": "missing:ROC", "Volatility.D": "missing:Volatility.D"}

corruptions = st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.sampled_from(FIELDS),
                                 st.sampled_from([np.inf, -np.inf, np.nan])), min_size=1, max_size=6)


def corrupt(view, spec):
    pool = view.pool.copy()
    hit = []
    for frac, field, value in spec:
        row = int(frac * len(pool))
        pool.loc[pool.index[row], field] = value
        hit.append((row, field))
    return dataclasses.replace(view, pool=pool), hit, pool


def _cid(rec) -> str:
    from market.identity import identity_of
    return f"{identity_of(str(rec['symbol']))}_{rec['logic']}_{rec['direction']}"


def check_non_finite(p, spec):
    view, hit, raw = corrupt(_view(p), spec)
    assert not np.isinf(view.pool[list(FIELDS)].to_numpy(dtype=np.float64)).any()
    seen = check_parity(p, view)
    cache = FeatureCache(null_cache=CACHE)
    default = run_window(view, ["v4"], SelectionConfig(challengers=(), feature_lookback=p["lookback"]),
                         seed=0, cache=cache)["v4"]
    from selection.pipeline.ingestion import deduplicate, normalise_pool

    kept = deduplicate(normalise_pool(view.pool), view.closes, SelectionConfig(), [])
    corrupted = {(_cid(raw.iloc[row]), str(raw.iloc[row]["symbol"])) for row, _ in hit}
    fired = 0
    for engine, res in (("v4", seen["v4"]), ("v3.4", seen["v3.4"]), ("default", default)):
        rejected = {r.id: r.reasons for r in res.rejected if r.last_stage is not None}
        won = {a.id for a in res.atoms}
        rules = dict(VETOED, **(TAIL if engine == "default" else {}))
        for cid, rec in kept.iterrows():
            for field, reason in rules.items():
                if not np.isnan(float(rec[field])):
                    continue  # missing (corrupted or not) fires; a finite value is not our case
                if cid in won:  # only forcing (stage 3) and the fallback (stage 4) recruit past a soft veto
                    assert field not in ("Value.Traded", "ROC", "Volatility.D") and res.htr_stage >= 3, \
                        (engine, cid, field)
                    continue
                assert reason in rejected[cid], (engine, cid, field, rejected[cid])
                fired += (cid, str(rec["symbol"])) in corrupted
        alphas = [c for a in res.atoms for c in a.conviction.values()]
        assert np.isfinite(alphas).all()
    pipeline = seen["v4"].pipeline_audit
    scored = next(e["data"] for e in pipeline if e["stage"] == "scoring")["log_mps"]
    assert np.isfinite(scored["max_alpha"]) and (scored["max_alpha"] > 0 or not seen["v4"].funnel.deduplicated)
    return fired


_S = dict(deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
          phases=[Phase.explicit, Phase.generate])


@settings(max_examples=40, **_S)
@given(pools, corruptions)
@example(CASES[0], [(0.0, "ADX", np.inf), (0.5, "Value.Traded", np.inf), (0.7, "ROC", -np.inf)])
def test_non_finite_fields_are_missing_in_both_engines(p, spec):
    check_non_finite(p, spec)


@pytest.mark.slow
@settings(max_examples=200, **_S)
@given(pools, corruptions)
def test_non_finite_fields_are_missing_in_both_engines_200(p, spec):
    check_non_finite(p, spec)


def test_one_infinite_adx_no_longer_zeroes_every_score():
    """Issue 15's repro: one ``inf`` ADX made every v4 alpha 0 (p_cdf's mean and std became inf),
    while v3.4 mapped the column to 0.01; both now treat it as missing."""
    p = CASES[0]
    view = _view(p)
    pool = view.pool.copy()
    pool.loc[pool.index[0], "ADX"] = np.inf
    v = dataclasses.replace(view, pool=pool)
    assert v.non_finite == (f"{pool.iloc[0]['symbol']}:ADX",)
    seen = check_parity(p, v)
    assert check_non_finite(p, [(0.0, "ADX", np.inf)]) >= 1 or _cid(pool.iloc[0]) in {
        a.id for a in seen["v4"].atoms}
    scores = [a.conviction["log_mps"] for a in seen["v4"].atoms]
    assert max(scores) > 0
    ingestion = next(e for e in seen["v4"].pipeline_audit if e["stage"] == "ingestion")
    assert ingestion["data"]["non_finite_fields"] == list(v.non_finite)


def test_context_refuses_an_infinite_feature():
    from selection.pipeline.orchestrator import prepare

    ctx = prepare(_view(CASES[0]), SelectionConfig(challengers=()), CACHE)
    fs = ctx.feature_store.copy()
    fs.iloc[0, fs.columns.get_loc("momentum")] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        type(ctx).model_validate({**dict(ctx), "feature_store": fs})
    assert issubclass(ToolkitError, Exception)
