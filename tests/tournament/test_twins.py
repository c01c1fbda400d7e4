"""Twin units (issue 23): units of different settings with the same cut-off, train slice, gap and
feature lookback (the base setting and the step sweep) make the same decisions but for ``random``;
they run as one task and share their work (``tournament.unit.run_units``). Their results must equal
those of separate units, on every field but the timings and the per-process cache counters."""
from __future__ import annotations

import json

import pytest

from tests.tournament.conftest import small_config
from tournament.market_io import load_market
from tournament.run import schedules
from tournament.unit import UnitContext, UnitKey, run_unit, run_units, twin_groups, twin_key

#: allocation diagnostics that count the worker's cache look-ups (execution keys, not decisions)
EXECUTION_KEYS = ("cache_hits", "cache_misses")


def _decisions(res) -> dict:
    d = json.loads(json.dumps(res.to_json()))
    d.pop("seconds")
    for a in d["allocations"].values():
        for k in EXECUTION_KEYS:
            a["diagnostics"].pop(k, None)
    return d


@pytest.fixture(scope="module")
def twins():
    cfg = small_config(sweeps={"step_size": [5, 60]}, engines=["v4", "v3.4", "raw", "random"],
                       profiles=["equal_weight", "min_variance", "hrp"], verification="full")
    market = load_market(cfg.market)
    sched = schedules(cfg, len(market.closes.index))
    keys = [UnitKey(s, w) for s in cfg.settings() for w in sched[s.id]]
    groups = [g for g in twin_groups(keys) if len(g) > 1]
    return cfg, market, keys, groups


def test_the_step_sweep_has_twins_of_the_base_windows(twins):
    cfg, _, keys, groups = twins
    base = cfg.settings()[0]
    assert len(groups) == 3  # max_windows 3: each base window has a step-5 twin, the first a step-60 one too
    assert all(g[0].setting == base for g in groups)
    assert sorted(len(g) for g in groups) == [2, 2, 3]
    assert sum(len(g) for g in twin_groups(keys)) == len(keys)  # every unit once


def test_twins_decide_as_separate_units(twins):
    """Every field of every twin equals the separately run unit (window numbers, ``random``'s draw
    from the twin's own seed, the base setting's riskfolio cells that the step sweep lacks)."""
    cfg, market, _, groups = twins
    shared = UnitContext(market=market, config=cfg)
    n_random_differs = 0
    for g in groups:
        together = run_units(shared, g)
        assert [r.key for r in together] == g
        for key, res in zip(g, together):
            alone = run_unit(UnitContext(market=market, config=cfg), key)
            assert _decisions(res) == _decisions(alone), key.id
            assert res.selections["v4"].window == key.window.index
        ids = [tuple(a.id for a in r.selections["random"].atoms) for r in together]
        n_random_differs += len(set(ids)) > 1
        assert set(together[0].allocations) > set(together[1].allocations)  # base: + riskfolio
    assert n_random_differs >= 1  # the fixture exercises `random`'s per-twin draw


def test_units_that_are_not_twins_are_refused(twins):
    cfg, market, keys, groups = twins
    other = next(k for k in keys if twin_key(k) != twin_key(groups[0][0]))
    with pytest.raises(ValueError, match="not twins"):
        run_units(UnitContext(market=market, config=cfg), [groups[0][0], other])


def test_units_that_verify_are_dispatched_first():
    """``dispatch_order``: twin groups holding a verified base window first (riskfolio units cost
    several times the others), each part in its order; every group kept once."""
    from tournament.unit import UnitContext, UnitKey, dispatch_order, twin_groups
    from tournament.market_io import load_market
    from tournament.run import schedules

    cfg = small_config(max_windows=6)
    market = load_market(cfg.market)
    sched = schedules(cfg, len(market.closes.index))
    keys = [UnitKey(s, w) for s in cfg.settings() for w in sched[s.id]]
    ctx = UnitContext(market=market, config=cfg, verify_windows=frozenset({2, 4}))
    groups = twin_groups(keys)
    got = dispatch_order(groups, ctx)
    assert sorted(map(id, got)) == sorted(map(id, groups))
    heads = [g[0].window.index for g in got[:2]]
    assert heads == [2, 4] and all(g[0].setting == ctx.base_setting for g in got[:2])
    assert [g for g in got[2:]] == [g for g in groups if g not in got[:2]]
