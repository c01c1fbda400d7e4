"""Engine registry: every engine from one shared computation; baselines; results and their JSON."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from contracts.enums import SpecVersion
from contracts.errors import ConfigError
from contracts.window import Window
from market.calendar import CRYPTO
from market.entropy import EntropyNullCache
from market.snapshots import SnapshotStore
from market.view import PastView
from selection.config import SelectionConfig
from selection.output import portfolio_candidates
from selection.registry import ENGINES, FeatureCache, engine_names, run_window
from tests.selection.selection_pools import make_view

CFG = SelectionConfig()
V4ISH = ["v4", "v4:ridge", "raw", "random"]


def _cache():
    return FeatureCache(null_cache=EntropyNullCache(n_series=500))


@pytest.fixture(scope="module")
def results():
    view = make_view(seed=21, n_assets=50)
    cache = _cache()
    return view, cache, run_window(view, V4ISH, CFG, seed=7, cache=cache)


def test_engine_names_and_unknown_engine():
    assert set(ENGINES) == set(engine_names(CFG))
    with pytest.raises(ConfigError, match="v5"):
        run_window(make_view(seed=1, n_assets=5), ["v5"], CFG, seed=0)


def test_shared_computation_and_result_shapes(results):
    view, cache, res = results
    assert list(res) == V4ISH and cache.misses == 1
    v4, ch, raw, rnd = (res[e] for e in V4ISH)
    assert v4.spec_version == ch.spec_version == SpecVersion.V4
    assert raw.spec_version == rnd.spec_version == SpecVersion.BASELINE
    assert v4.clusters == ch.clusters == raw.clusters == rnd.clusters  # the same partitioning
    assert v4.manifest == raw.manifest and set(v4.manifest) >= {"shrinkage_intensity", "hardened",
                                                                "entropy_mean", "critical_value"}
    assert len(rnd.atoms) == len(v4.atoms)
    assert len(raw.atoms) == raw.funnel.after_hard_vetoes
    for a in v4.atoms:
        assert set(a.conviction) == {"log_mps", "ridge"} and a.htr_stage == v4.htr_stage
    assert all(a.htr_stage is None for a in raw.atoms + rnd.atoms)
    assert v4.linkage is not None and len(v4.linkage) == len(v4.linkage_labels) - 1
    for r in res.values():
        assert not r.funnel.invariant_errors()
        assert {a.id for a in r.atoms} <= set(r.clusters)
        ids = {a.id for a in r.atoms} | {x.id for x in r.rejected}
        assert len(ids) == len(r.atoms) + len(r.rejected)  # every candidate accounted for once
        assert {"cluster_density", "avg_conviction", "pool_diversity"} <= set(r.metrics)


def test_avg_conviction_uses_the_engines_scorer(results):
    _, _, res = results
    v4, ch = res["v4"], res["v4:ridge"]
    assert v4.metrics["avg_conviction"] == pytest.approx(np.mean([a.conviction["log_mps"] for a in v4.atoms]))
    assert ch.metrics["avg_conviction"] == pytest.approx(np.mean([a.conviction["ridge"] for a in ch.atoms]))
    k = np.array(list(pd.Series([a.cluster for a in v4.atoms]).value_counts())) / len(v4.atoms)
    assert v4.metrics["pool_diversity"] == pytest.approx(1.0 / np.sum(k * k))


def test_pipeline_audit_events(results):
    _, _, res = results
    stages = [e["stage"] for e in res["v4"].pipeline_audit]
    assert stages[:5] == ["ingestion", "features", "hardening", "scoring", "partitioning"]
    assert stages[-1] == "synthesis" and "policy" in stages
    pol = [e["data"] for e in res["v4"].pipeline_audit if e["stage"] == "policy"]
    assert all(p["scorer"] == "log_mps" for p in pol)
    assert {"n_winners", "n_vetoed", "n_shorts", "stage"} <= set(pol[0])
    assert [e["stage"] for e in res["raw"].pipeline_audit][-1] == "baseline"


def test_random_seed_from_window_key_not_order():
    view = make_view(seed=22, n_assets=40)
    a = run_window(view, ["v4", "random"], CFG, seed=3, cache=_cache())["random"]
    b = run_window(view, ["random", "raw", "v4"], CFG, seed=3, cache=_cache())["random"]
    c = run_window(view, ["random"], CFG, seed=4, cache=_cache())["random"]
    assert [x.id for x in a.atoms] == [x.id for x in b.atoms]
    assert [x.id for x in a.atoms] != [x.id for x in c.atoms]


def test_cache_hits_and_same_results():
    view = make_view(seed=23, n_assets=30)
    cache = _cache()
    a = run_window(view, ["v4"], CFG, seed=0, cache=cache)["v4"]
    b = run_window(view, ["v4"], CFG, seed=0, cache=cache)["v4"]
    assert (cache.hits, cache.misses) == (1, 1)
    assert a.model_dump() == b.model_dump()


def test_no_look_ahead():
    full = make_view(seed=24, n_assets=30, n_bars=300).closes
    pool = make_view(seed=24, n_assets=30, n_bars=300).pool
    store = SnapshotStore(frames={full.index[249]: pool})
    w = Window(index=3, cutoff=249, train_start=50, step_size=20, n_test=20)
    a = run_window(PastView.at(full, store, w, CRYPTO), V4ISH, CFG, seed=1, cache=_cache())
    bent = full.copy()
    bent.iloc[250:] *= np.random.default_rng(0).uniform(0.2, 5.0, bent.iloc[250:].shape)
    b = run_window(PastView.at(bent, store, w, CRYPTO), V4ISH, CFG, seed=1, cache=_cache())
    for e in V4ISH:
        assert a[e].model_dump() == b[e].model_dump()
    bent.iloc[249, 0] *= 1.5  # the cut-off bar itself is part of the past: it must matter
    c = run_window(PastView.at(bent, store, w, CRYPTO), ["v4"], CFG, seed=1, cache=_cache())
    assert c["v4"].model_dump() != a["v4"].model_dump()


def test_hardening_applied_once_on_noise_and_not_on_orderly_pools():
    noise = run_window(make_view(seed=25, n_assets=40, ar=0.0), ["v4"], CFG, seed=0, cache=_cache())["v4"]
    assert noise.manifest["hardened"] and noise.manifest["shrinkage_intensity"] == 0.05
    th = [e["data"]["thresholds"]["entropy_max"] for e in noise.pipeline_audit if e["stage"] == "policy"]
    assert th[0] == pytest.approx(0.81) and all(t in (pytest.approx(0.81), pytest.approx(0.972)) for t in th)
    hard = [e for e in noise.pipeline_audit if e["stage"] == "hardening"]
    assert len(hard) == 1
    orderly = run_window(make_view(seed=25, n_assets=40, ar=0.5), ["v4"], CFG, seed=0,
                         cache=_cache())["v4"]
    assert not orderly.manifest["hardened"] and orderly.manifest["shrinkage_intensity"] == 0.01
    assert orderly.manifest["entropy_mean"] < orderly.manifest["critical_value"]
    off = run_window(make_view(seed=25, n_assets=40), ["v4"], CFG.model_copy(update={"hardening": False}),
                     seed=0, cache=_cache())["v4"]
    assert not off.manifest["hardened"] and off.manifest["entropy_max"] == 0.90


def test_portfolio_candidates_is_strict_json(results):
    _, _, res = results
    doc = portfolio_candidates(res)
    text = json.dumps(doc, allow_nan=False)
    back = json.loads(text)
    v4 = back["engines"]["v4"]
    assert v4["shrinkage_intensity"] == res["v4"].shrinkage and "hardened" in v4
    assert len(v4["winners"]) == len(res["v4"].atoms)
    assert {"symbol", "identity", "direction", "logic", "cluster", "sector", "conviction",
            "htr_stage"} <= set(v4["winners"][0])
    assert all({"reasons", "last_stage"} <= set(r) for r in v4["rejected"])
    assert v4["linkage"] and v4["linkage_labels"]


def test_v34_dispatch():
    pytest.importorskip("selection.legacy.engine")
    view = make_view(seed=26, n_assets=30)
    res = run_window(view, ["v3.4", "v4"], CFG, seed=0, cache=_cache())
    assert res["v3.4"].spec_version == SpecVersion.V34 and res["v3.4"].engine == "v3.4"
    assert not res["v3.4"].funnel.invariant_errors()


@pytest.mark.parametrize("n", [0, 1, 2])
def test_degenerate_pools_get_results_not_exceptions(n):
    view = make_view(seed=27, n_assets=5)
    from tests.selection.selection_pools import with_pool
    res = run_window(with_pool(view, view.pool.iloc[:n]), V4ISH, CFG, seed=0, cache=_cache())
    for e, r in res.items():
        assert len(r.atoms) == n and not r.funnel.invariant_errors()
        k = r.funnel.n_clusters
        assert k == n if n < 2 else 1 <= k <= 2
        if k == n:  # n singleton clusters: diversity 1 / sum (1/n)^2 = n, no density
            assert r.metrics["pool_diversity"] == float(n) and r.metrics["cluster_density"] is None
        json.dumps(portfolio_candidates(res), allow_nan=False)
    assert res["v4"].htr_stage == 4  # fewer than 15 possible: stage 4's result is kept


def test_synthesised_atoms_carry_the_pool_fields(results):
    view, _, res = results
    raw = view.pool.set_index("symbol")
    for a in res["v4"].atoms:
        row = raw.loc[a.symbol]
        assert a.id == f"{a.identity}_{a.logic.value}_{a.direction.value}"
        assert a.direction.value == row["direction"] and a.sector == row["sector"]
        assert a.sign == (1 if row["direction"] == "LONG" else -1)
        assert a.cluster == res["v4"].clusters[a.id]
        assert a.identity == a.symbol.removesuffix("USDT.P")


def test_each_engine_alone_runs():
    """Every engine can be requested on its own (a pass must always record its event)."""
    view = make_view()
    for engine in ("v4", "v4:ridge", "raw", "random"):
        out = run_window(view, [engine], SelectionConfig(), seed=1)
        assert list(out) == [engine]


def test_results_equal_their_revalidation_and_the_unshared_builds(results):
    """The rejected candidates are built with ``model_construct`` and the engines share one
    ``result_parts`` (stage-1 survivors, symbols, evidence columns, atom tables): every result
    equals its own full re-validation, and equals the result built alone (``parts`` None: the
    previous code, each result computing everything itself)."""
    from contracts.selection import SelectionResult
    from selection.baselines import random_result, raw_result
    from selection.pipeline.orchestrator import CHAMPION, select
    from selection.pipeline.results import v4_result

    view, cache, out = results
    for e, r in out.items():
        again = SelectionResult.model_validate(r.model_dump())
        assert again == r and again.model_dump(mode="json") == r.model_dump(mode="json"), e
    assert sum(len(r.rejected) for r in out.values()) > 0
    ctx = select(cache.prepared(view, CFG), [CHAMPION, "ridge"])
    alone = {"v4": v4_result(ctx, "v4", CHAMPION), "v4:ridge": v4_result(ctx, "v4:ridge", "ridge"),
             "raw": raw_result(ctx), "random": random_result(ctx, len(ctx.winners[CHAMPION].winners), 7)}
    for e, r in alone.items():
        assert r.model_dump(mode="json") == out[e].model_dump(mode="json"), e
