"""Reference cells that anchor a tournament's result: buy-and-hold of the benchmark and an equal-weight
buy-and-hold of each window's eligible pool.

Both are simulated like any cell (same simulators, costs, floor and windows: the base setting's), audited
like any cell (their decisions are written to ``selection/<setting>/<k>/baselines.json`` and digested),
and shown in the matrix with ``baseline = True`` and ``trial = False``: they are never trials, never in
the overfitting statistics or the engine comparisons.

- ``bh:benchmark``: one LONG atom on the benchmark symbol, weight 1, every window (held through it; the
  window's fill resets the position to 100% of the portfolio's value, a near-zero trade).
- ``bh:pool``: one LONG atom per eligible symbol, equal weights at each window's fill, held through the
  window. Eligible: the symbols of the ``raw`` engine's winners in that window (every candidate of the
  point-in-time pool without a hard veto) when ``raw`` runs; otherwise every symbol of the point-in-time
  pool with a price at the cut-off. Which rule was used is recorded in ``bootstrap.json["baselines"]``.

Atoms use the ``rating`` logic, whose gate is always 1 (``market.gates``), so a position is never gated
out within a window. ``vs_best_trial`` compares the best trial (highest Sharpe at the base setting) with
each baseline: the Sharpe difference with its paired test and CI.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from contracts.atom import StrategyAtom
from contracts.cell import CellKey
from contracts.enums import Backend, Direction, Logic, Profile
from simulation import CellPlan, WindowPlan
from tournament.config import TournamentConfig
from tournament.market_io import Market

BENCHMARK_BH = "bh:benchmark"
POOL_BH = "bh:pool"
BASELINE_ENGINES = (BENCHMARK_BH, POOL_BH)


def _atom(symbol: str) -> StrategyAtom:
    return StrategyAtom(id=StrategyAtom.make_id(symbol, Logic.RATING, Direction.LONG), symbol=symbol,
                        identity=symbol, direction=Direction.LONG, logic=Logic.RATING, cluster=0)


def _eligible(market: Market, results: dict, sid: str, w) -> list[str]:
    res = results.get(f"{sid}/{w.index}")
    if res is not None and "raw" in res.selections:
        return sorted({a.symbol for a in res.selections["raw"].atoms})
    dates = market.closes.index
    pool = market.snapshots.pool_as_of(dates[w.cutoff])
    px = market.closes.iloc[w.cutoff]
    return sorted(s for s in set(pool["symbol"]) if s in px.index and np.isfinite(px[s]) and px[s] > 0)


def baseline_plans(cfg: TournamentConfig, market: Market, sched: dict, results: dict
                   ) -> tuple[dict[str, tuple[CellKey, CellPlan]], dict[str, Any]]:
    """Plans of the baseline cells (one per baseline and simulator, base setting), and what was used."""
    base = cfg.settings()[0]
    windows = sched[base.id]
    rule = "raw winners" if "raw" in cfg.engines else "point-in-time pool with a price at the cut-off"
    per_engine: dict[str, list[WindowPlan]] = {}
    if market.benchmark is not None:
        a = _atom(market.benchmark)
        per_engine[BENCHMARK_BH] = [WindowPlan(window=w, atoms=[a], weights={a.id: 1.0}) for w in windows]
    pool_plans = []
    for w in windows:
        atoms = [_atom(s) for s in _eligible(market, results, base.id, w)]
        pool_plans.append(WindowPlan(window=w, atoms=atoms, weights={a.id: 1.0 / len(atoms) for a in atoms}))
    per_engine[POOL_BH] = pool_plans
    plans = {}
    for engine, wps in per_engine.items():
        for sim in cfg.simulators:
            cell = CellKey(engine=engine, profile=Profile.EQUAL_WEIGHT, backend=Backend.NATIVE, simulator=sim,
                           step_size=base.step_size, train_window=base.train_window,
                           feature_lookback=base.feature_lookback)
            plans[cell.id] = (cell, CellPlan(cell_id=cell.id, windows=wps))
    info = {"engines": sorted(per_engine), "benchmark": market.benchmark, "pool_rule": rule,
            "setting_id": base.id}
    return plans, info


def selection_artifact(plans: dict, setting_id: str, window: int) -> dict[str, Any]:
    """``baselines.json`` of one window: each baseline's atoms (as ``portfolio_candidates.json`` lists
    winners) so that the directional check traces them like any engine's."""
    engines = {}
    for _, (cell, plan) in plans.items():
        for wp in plan.windows:
            if wp.window.index == window and cell.engine not in engines:
                engines[cell.engine] = {"engine": cell.engine, "winners": [a.model_dump(mode="json") for a in wp.atoms],
                                        "weights": dict(sorted(wp.weights.items())), "funnel": None, "clusters": {}}
    return {"window": window, "setting_id": setting_id, "engines": dict(sorted(engines.items()))}


def baseline_rows(cfg: TournamentConfig, plans: dict, series: dict[str, pd.Series], P: int,
                  columns: list[str], figures: dict | None = None) -> pd.DataFrame:
    """Matrix rows of the baseline cells (the matrix's columns; statistics of trials left blank).
    ``figures``: per cell id, ``{"metrics", "ci"}`` computed already by the same calls (the matrix's
    per-cell tasks, ``tournament.post_tasks.cell_stats_task``); else computed here."""
    from audit.metrics import compute_metrics
    from audit.statistics import sharpe_ci
    from tournament.matrix import series_seed

    rows = []
    for cid, (cell, plan) in plans.items():
        r = series[cid].to_numpy()
        if figures is not None and cid in figures:
            m, ci = figures[cid]["metrics"], figures[cid]["ci"]
        else:
            m = compute_metrics(r, P)
            ci = sharpe_ci(r, P, seed=series_seed(cfg.seed, "sharpe_ci", r), n_boot=cfg.statistics.n_boot,
                           alpha=cfg.statistics.alpha)  # one CI per distinct series, as for every cell
        rows.append({"cell_id": cid, **cell.dims(), "trial": False, "sharpe": ci.sharpe,
                     "sharpe_ci_low": ci.ci_low, "sharpe_ci_high": ci.ci_high, "cagr": m["cagr"],
                     "max_drawdown": m["max_drawdown"], "annual_volatility": m["annual_volatility"],
                     "liquidated": False, "drift": False, "n_windows": len(plan.windows), "degenerate": ci.degenerate})
    out = pd.DataFrame(rows)
    return out.reindex(columns=columns)


def vs_best_trial(cfg: TournamentConfig, matrix: pd.DataFrame, series: dict[str, pd.Series], P: int
                  ) -> dict[str, Any]:
    """The best trial of the base setting (highest Sharpe) against each baseline on the trial simulator:
    the Sharpe difference (trial - baseline) on their common dates, with the paired test's p-value and CI."""
    from audit.statistics import paired_sharpe_test
    from tournament.unit import derive_seed

    base = cfg.settings()[0]
    at_base = matrix[(matrix["step_size"] == base.step_size) & (matrix["train_window"] == base.train_window)
                     & (matrix["feature_lookback"] == base.feature_lookback)]
    t = at_base[at_base["trial"].astype(bool) & at_base["sharpe"].notna()]
    if t.empty:
        return {}
    best = t.sort_values(["sharpe", "cell_id"], ascending=[False, True]).iloc[0]
    out: dict[str, Any] = {"best_trial": {"cell_id": best["cell_id"], "engine": best["engine"],
                                          "profile": best["profile"], "sharpe": float(best["sharpe"])}}
    sim = cfg.trial_simulator.value
    for row in at_base[at_base["baseline"].astype(bool) & (at_base["simulator"] == sim)].itertuples():
        ab = pd.concat([series[best["cell_id"]], series[row.cell_id]], axis=1, join="inner").dropna()
        res = paired_sharpe_test(ab.iloc[:, 0].to_numpy(), ab.iloc[:, 1].to_numpy(), P,
                                 seed=derive_seed(cfg.seed, "vs_baseline", best["cell_id"], row.cell_id),
                                 n_boot=cfg.statistics.n_boot, alpha=cfg.statistics.alpha)
        d = res.to_dict() if hasattr(res, "to_dict") else dict(res)
        out[row.engine] = {"cell_id": row.cell_id, "baseline_sharpe": float(row.sharpe), "n_days": int(len(ab)), **d}
    return out
