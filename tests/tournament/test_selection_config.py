"""The ``selection:`` block of the tournament YAML (issue 15) and degenerate selections.

A block that changes v4's entropy ceiling, ADX floor, liquidity floors and sector cap changes v4's
(and the baselines') decisions, is recorded in the run_start ledger record beside v3.4's constants,
and leaves v3.4 unchanged byte for byte. An unfitted challenger is marked degenerate: a warning
ledger record naming the window, and its cells leave the trials and the verdicts.
"""
from __future__ import annotations

import json

import pytest

from contracts.errors import ConfigError
from tournament.config import load_config
from tournament.market_io import load_market
from tournament.records import unit_records
from tournament.run import _run_start, schedules
from tournament.unit import UnitContext, UnitKey, run_unit
from tests.tournament.conftest import SMALL

YAML = """
preset: quick
selection:
  entropy_max: 0.6
  adx_min: 30
  liquidity_floor_perp: 3.0e8
  liquidity_floor_other: 1.5e8
  sector_cap: 0.3
"""


def _unit(cfg, k=-1):
    market = load_market(cfg.market)
    s = cfg.settings()[0]
    w = schedules(cfg, len(market.closes))[s.id][k]
    return market, run_unit(UnitContext(market=market, config=cfg), UnitKey(s, w))


def _cfg(path=None, **over):
    base = {**SMALL, "engines": ["v4", "v4:ridge", "v3.4", "raw"], "profiles": ["equal_weight"],
            "backends": ["native"], "simulators": ["vectorbt"], **over}
    return load_config(path, preset="quick", overrides=base)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "run.yaml"
    path.write_text(YAML)
    default, custom = _cfg(), _cfg(path)
    return (default, _unit(default)[1]), (custom, _unit(custom)[1])


def test_yaml_selection_block_is_validated(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("selection:\n  entropy_maxx: 0.6\n")
    with pytest.raises(ConfigError, match="selection.entropy_maxx"):
        load_config(p)
    p.write_text("selection:\n  feature_lookback: 60\n")
    with pytest.raises(ConfigError, match="base.feature_lookback"):
        load_config(p)
    p.write_text("selection:\n  ridge: {history: 300, alphaa: 1}\n")
    with pytest.raises(ConfigError, match="selection.ridge.alphaa"):
        load_config(p)


def test_yaml_settings_reach_v4_and_baselines_but_not_v34(pair):
    (dflt, a), (cust, b) = pair
    assert cust.selection.entropy_max == 0.6 and cust.selection.sector_cap == 0.3
    assert [x.id for x in a.selections["v4"].atoms] != [x.id for x in b.selections["v4"].atoms]
    assert [x.id for x in a.selections["raw"].atoms] != [x.id for x in b.selections["raw"].atoms]  # floors
    assert a.selections["v3.4"].model_dump() == b.selections["v3.4"].model_dump()
    # the thresholds each v4 pass used are the block's (stage 1: as given, or x0.9 when hardened)
    passes = [e["data"] for e in b.selections["v4"].pipeline_audit if e["stage"] == "policy"]
    assert passes[0]["thresholds"]["adx_min"] == 30
    assert passes[0]["thresholds"]["entropy_max"] in (0.6, pytest.approx(0.54))
    hard = next(e["data"] for e in b.selections["raw"].pipeline_audit if e["stage"] == "hardening")
    assert hard["hard_vetoes"]["liquidity"] > next(
        e["data"] for e in a.selections["raw"].pipeline_audit if e["stage"] == "hardening")["hard_vetoes"]["liquidity"]
    secs = [x.sector for x in b.selections["v4"].atoms]
    last = passes[-1]
    assert last["sector_cap"]["cap"] == 0.3 and last["sector_cap"]["quota"] == int(0.3 * len(secs))
    assert last["sector_cap"]["shares"] == {s: secs.count(s) / len(secs) for s in sorted(set(secs))}
    if last["sector_cap"]["held"]:
        assert max(secs.count(s) for s in secs) <= 0.3 * len(secs) + 1e-9
    else:  # stated, at the last stage only
        assert "sector_cap_unenforceable" in last["notes"] and b.selections["v4"].htr_stage == 4


def test_run_start_records_v4_settings_and_v34_constants(pair):
    (_, _), (cust, _) = pair
    recs = []
    _run_start(lambda t, s, d: recs.append(d), cust, load_market(cust.market))
    sel = recs[0]["parameters"]["selection"]
    assert sel["v4"]["entropy_max"] == 0.6 and sel["v4"]["adx_min"] == 30
    assert sel["v4"]["liquidity_floor_perp"] == 3e8 and sel["v4"]["sector_cap"] == 0.3
    assert (sel["v3.4"]["entropy_max"], sel["v3.4"]["adx_min"]) == (0.9, 10.0)
    assert (sel["v3.4"]["liquidity_floor_perp"], sel["v3.4"]["liquidity_floor_other"]) == (50e6, 20e6)
    assert sel["v3.4"]["sector_cap"] is None and sel["v3.4"]["top_n_floor"] == 5
    assert recs[0]["parameters"]["htr"]["entropy_max"] == 0.6
    json.dumps(recs[0])  # JSON-ready


def test_unfitted_challenger_gets_a_warning_record_naming_the_window():
    cfg = _cfg(None, selection={"ridge": {"history": 30}})
    market, res = _unit(cfg)
    assert res.selections["v4:ridge"].manifest["degenerate"] is True
    assert res.selections["v4"].manifest["degenerate"] is False
    recs = list(unit_records(res, market.closes.index))
    warn = [d for t, _, d in recs if t.value == "warning"]
    assert len(warn) == 1 and warn[0]["engine"] == "v4:ridge" and warn[0]["window"] == res.key.window.index
    assert warn[0]["code"] == "degenerate_selection" and "unfitted" in warn[0]["message"]
    sel = {d["engine"]: d for t, _, d in recs if t.value == "selection"}
    assert sel["v4:ridge"]["degenerate"] is True and sel["v4"]["degenerate"] is False


def test_degenerate_cells_leave_trials_and_verdicts(small_run):
    """The small run's units, re-read; v4 marked degenerate in one window of the base setting."""
    from tournament.matrix import performance_matrix
    from tournament.postprocess import build_plans
    from tournament.unit import UnitResult

    import pandas as pd
    import yaml
    from tournament.config import TournamentConfig

    d = small_run.run_dir
    cfg = TournamentConfig.model_validate(yaml.safe_load((d / "config.yaml").read_text()))
    market = load_market(cfg.market)
    sched = schedules(cfg, len(market.closes))
    units = [UnitResult.from_json(json.loads(p.read_text())) for p in (d / "units").glob("*/*.json")]
    results = {u.key.id: u for u in units}
    plans = build_plans(cfg, sched, results)
    returns = pd.read_parquet(d / "returns.parquet")
    sid = cfg.settings()[0].id
    _, s0 = performance_matrix(cfg, plans, returns, [], 365)
    m1, s1 = performance_matrix(cfg, plans, returns, [], 365, {(sid, "v4"): [sched[sid][0].index]})
    v4_trials = {cid for cid, (c, _) in plans.items() if c.engine == "v4" and cfg.is_trial(c)}
    assert v4_trials and s1["n_trials"] == s0["n_trials"] - len(v4_trials)
    assert set(s1["excluded_trials"]["cells"]) == v4_trials and "degenerate" in s1["excluded_trials"]["reason"]
    row = m1.set_index("cell_id")
    assert (row.loc[sorted(v4_trials), "selection_degenerate_windows"] == 1).all()
    assert not row.loc[sorted(v4_trials), "trial"].any()
    assert not any("v4 vs" in t["comparison"] or t["a"] == "v4" or t["b"] == "v4"
                   for t in s1["paired_tests"]["tests"])
    assert any(t["a"] == "v4" for t in s0["paired_tests"]["tests"])
    assert "excluded_trials" not in s0
