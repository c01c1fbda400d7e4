"""The per-unit path (issue 23): the worker encodes a unit's files and records
(``tournament.unit_output``), the driver writes, digests and appends them and keeps only the slim
result the post-unit phase reads (``UnitResult.slim``)."""
from __future__ import annotations

import json
import pickle

import pytest

from audit.canonical import normalize_data
from selection.output import portfolio_candidates
from tests.tournament.conftest import small_config
from tournament.market_io import load_market
from tournament.records import unit_records
from tournament.run import schedules
from tournament.unit import UnitContext, UnitKey, UnitResult, run_unit, slim_json
from tournament.unit_output import unit_output


@pytest.fixture(scope="module")
def units():
    cfg = small_config(max_windows=2)
    market = load_market(cfg.market)
    sched = schedules(cfg, len(market.closes.index))
    ctx = UnitContext(market=market, config=cfg)
    keys = [UnitKey(s, w) for s in cfg.settings() for w in sched[s.id]]
    return market, [run_unit(ctx, k) for k in keys]


def _plain(obj):
    return json.loads(json.dumps(obj))


def test_worker_bytes_records_and_slim_result_match_the_driver_path(units):
    """What the driver used to compute from the result, the worker's output holds: the unit file
    (the same document, compact layout), portfolio_candidates.json (the same document as
    ``portfolio_candidates``), the ledger records a resumed run computes from the reloaded file, and
    the slim result of that reloaded unit."""
    market, results = units
    dates = market.closes.index
    for res in results:
        out = unit_output(res, dates)
        assert out.key == res.key
        assert json.loads(out.unit_bytes) == _plain(res.to_json())
        assert json.loads(out.candidates_bytes) == _plain(portfolio_candidates(res.selections))
        assert b"\n" not in out.unit_bytes and b", " not in out.candidates_bytes[:200]  # compact
        reloaded = UnitResult.from_json(json.loads(out.unit_bytes))
        # the same records (a reloaded file lists the engines in sorted order: compared by key)
        assert {d["key"]: (t, s, normalize_data(d)) for t, s, d in out.records} == \
               {d["key"]: (t, s, normalize_data(d)) for t, s, d in unit_records(reloaded, dates)}
        assert [d["key"] for _, _, d in out.records] == [d["key"] for _, _, d in unit_records(res, dates)]
        assert out.result == reloaded.slim() == UnitResult.from_json(slim_json(reloaded.to_json()))


def test_slim_keeps_what_the_post_unit_phase_reads(units):
    _, results = units
    for res in results:
        slim = res.slim()
        assert slim.key == res.key and slim.seconds == res.seconds
        for e, sel in res.selections.items():
            s = slim.selections[e]
            assert s.atoms == sel.atoms and s.htr_stage == sel.htr_stage and s.manifest == sel.manifest
            assert s.funnel == sel.funnel and s.metrics == sel.metrics
            assert s.rejected == [] and s.linkage is None and s.linkage_labels is None
            assert s.pipeline_audit == [] and s.clusters == {}
        for k, a in res.allocations.items():
            b = slim.allocations[k]
            assert (b.weights, b.status, b.fallback_used, b.relaxed, b.backend, b.profile, b.binding) == \
                   (a.weights, a.status, a.fallback_used, a.relaxed, a.backend, a.profile, a.binding)
            assert b.diagnostics == ({"objective": a.diagnostics["objective"]}
                                     if "objective" in a.diagnostics else {})
    full = sum(len(pickle.dumps(r)) for r in results)
    slim = sum(len(pickle.dumps(r.slim())) for r in results)
    assert slim < 0.5 * full, (slim, full)


def test_the_driver_encodes_no_unit_and_keeps_slim_results(tmp_path, monkeypatch):
    """A process-executor run: the driver never dumps a unit (``UnitResult.to_json`` or
    ``portfolio_candidates`` in the driver process; the workers, forked, count in their own memory)
    and the post-unit phase receives slim results only."""
    import selection.output
    import tournament.postprocess as post
    from tournament.run import run_tournament

    calls = {"to_json": 0, "portfolio_candidates": 0}
    to_json, pc = UnitResult.to_json, selection.output.portfolio_candidates

    def counting_to_json(self):
        calls["to_json"] += 1
        return to_json(self)

    def counting_pc(results):
        calls["portfolio_candidates"] += 1
        return pc(results)

    monkeypatch.setattr(UnitResult, "to_json", counting_to_json)
    monkeypatch.setattr(selection.output, "portfolio_candidates", counting_pc)
    seen = {}
    finish = post.finish_run

    def spy(run_dir, cfg, market, sched, results, *a, **k):
        seen["results"] = dict(results)
        return finish(run_dir, cfg, market, sched, results, *a, **k)

    monkeypatch.setattr(post, "finish_run", spy)
    cfg = small_config(max_windows=2, executor="process", workers=2)
    out = run_tournament(cfg, tmp_path)
    assert out.n_units == 2
    assert calls == {"to_json": 0, "portfolio_candidates": 0}, calls
    assert len(seen["results"]) == 2
    for res in seen["results"].values():
        assert all(s.rejected == [] and s.pipeline_audit == [] for s in res.selections.values())
        assert any(s.atoms for s in res.selections.values())
    files = sorted(out.run_dir.glob("units/*/*.json"))
    assert len(files) == 2
    reloaded = UnitResult.from_json(json.loads(files[0].read_bytes()))
    assert any(s.rejected for s in reloaded.selections.values())  # the file keeps everything
