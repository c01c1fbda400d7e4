"""Invariants of the v4 policy over generated pools (hypothesis, 15 examples, seeded pools)."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from market.entropy import EntropyNullCache
from selection.config import SelectionConfig
from selection.registry import FeatureCache, run_window
from tests.selection.selection_pools import make_view, with_pool

CACHE = EntropyNullCache(n_series=300)


@settings(max_examples=15, deadline=None, derandomize=True, database=None)
@given(seed=st.integers(0, 10_000), n=st.integers(8, 70), shorts=st.floats(0.0, 1.0),
       sectors=st.integers(1, 6), sour=st.floats(0.0, 0.9), illiquid=st.floats(0.0, 0.5))
def test_policy_invariants(seed, n, shorts, sectors, sour, illiquid):
    view = make_view(seed=seed, n_assets=n, short_share=shorts, n_sectors=sectors)
    rng = np.random.default_rng(seed)
    pool = view.pool.copy()
    flip = rng.random(n) < sour  # sentiment against the direction: soft veto
    pool.loc[flip, "Recommend.All"] = -pool.loc[flip, "Recommend.All"]
    pool.loc[rng.random(n) < illiquid, "Value.Traded"] = 1e6  # hard veto
    cfg = SelectionConfig(challengers=())
    res = run_window(with_pool(view, pool), ["v4", "raw"], cfg, seed=seed,
                     cache=FeatureCache(null_cache=CACHE))
    v4, raw = res["v4"], res["raw"]
    ids = [a.id for a in v4.atoms]
    assert len(ids) <= 25 and len(set(ids)) == len(ids)
    assert set(ids) <= {a.id for a in raw.atoms}  # never a hard-vetoed candidate
    assert not v4.funnel.invariant_errors() and v4.funnel.n_clusters <= 25
    assert v4.htr_stage == 4 or len(ids) >= 15
    last = [e["data"] for e in v4.pipeline_audit if e["stage"] == "policy"][-1]
    secs = [a.sector for a in v4.atoms]
    if secs:  # both branches checked: the cap holds, or the pass says it cannot, with the shares
        shares = {s: secs.count(s) / len(secs) for s in sorted(set(secs))}
        assert last["sector_cap"]["shares"] == shares
        held = max(shares.values()) <= 0.40 + 1e-9
        assert last["sector_cap"]["held"] == held
        assert ("sector_cap_unenforceable" in last["notes"]) == (not held)
        if not held:  # only the last stage may keep a cap that could not hold
            assert v4.htr_stage == 4
    assert last["n_shorts"] == sum(a.sign < 0 for a in v4.atoms)
    alphas = [a.conviction["log_mps"] for a in v4.atoms]
    assert alphas == sorted(alphas, reverse=True)  # winners in alpha order
