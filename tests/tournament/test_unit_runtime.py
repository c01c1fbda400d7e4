"""The runtime settings around a unit (issue 23, ``tournament.unit.collector_threshold`` and
``selection_strings``): they are in force while the unit decides, restored afterwards (also when a
unit raises), and no decision depends on them."""
from __future__ import annotations

import contextlib
import gc
import json

import pandas as pd
import pytest

import tournament.unit as U
from tests.tournament.conftest import small_config
from tournament.market_io import load_market
from tournament.run import schedules


@pytest.fixture(scope="module")
def unit_setup():
    cfg = small_config(engines=["v4", "v3.4", "raw", "random"],
                       profiles=["equal_weight", "min_variance", "hrp", "barbell"])
    market = load_market(cfg.market)
    sched = schedules(cfg, len(market.closes.index))
    keys = [U.UnitKey(s, w) for s in cfg.settings() for w in sched[s.id]]
    return cfg, market, keys


def _decisions(res) -> dict:
    d = json.loads(json.dumps(res.to_json()))
    d.pop("seconds")
    for a in d["allocations"].values():
        for k in ("cache_hits", "cache_misses"):
            a["diagnostics"].pop(k, None)
    return d


def test_settings_hold_during_the_selection_and_are_restored(unit_setup, monkeypatch):
    cfg, market, keys = unit_setup
    seen = []
    real = U.run_twin_windows

    def spy(*a, **k):
        seen.append((gc.get_threshold()[0], pd.get_option("mode.string_storage")))
        return real(*a, **k)

    monkeypatch.setattr(U, "run_twin_windows", spy)
    before = (gc.get_threshold(), pd.get_option("mode.string_storage"))
    U.run_unit(U.UnitContext(market=market, config=cfg), keys[0])
    assert seen and all(s == (U.GC_THRESHOLD0, "python") for s in seen)
    assert (gc.get_threshold(), pd.get_option("mode.string_storage")) == before
    assert before[0][0] != U.GC_THRESHOLD0

    def boom(*a, **k):
        raise RuntimeError("engine failed")

    monkeypatch.setattr(U, "run_twin_windows", boom)
    with pytest.raises(RuntimeError, match="engine failed"):
        U.run_unit(U.UnitContext(market=market, config=cfg), keys[0])
    assert (gc.get_threshold(), pd.get_option("mode.string_storage")) == before


def test_no_decision_depends_on_the_settings(unit_setup, monkeypatch):
    """Every field of each unit (selections, atoms, weights, statuses) is the same with the runtime
    settings and without them (pandas' default Arrow strings, the default collector)."""
    cfg, market, keys = unit_setup
    picked = [keys[0], keys[len(keys) // 2], keys[-1]]
    with_settings = [_decisions(U.run_unit(U.UnitContext(market=market, config=cfg), k)) for k in picked]
    monkeypatch.setattr(U, "collector_threshold", contextlib.nullcontext)
    monkeypatch.setattr(U, "selection_strings", contextlib.nullcontext)
    without = [_decisions(U.run_unit(U.UnitContext(market=market, config=cfg), k)) for k in picked]
    assert pd.get_option("mode.string_storage") != "python"
    assert with_settings == without


def test_a_run_restores_the_collector(monkeypatch, tmp_path):
    """``run_tournament`` runs under the threshold (the driver; forked workers inherit it) and
    restores the collector's settings when it returns or fails."""
    import tournament.run as R

    seen = []

    def fake(*a, **k):
        seen.append(gc.get_threshold()[0])
        raise RuntimeError("stop here")

    monkeypatch.setattr(R, "_run_tournament", fake)
    before = gc.get_threshold()
    with pytest.raises(RuntimeError, match="stop here"):
        R.run_tournament(small_config(), tmp_path)
    assert seen == [U.GC_THRESHOLD0] and gc.get_threshold() == before
