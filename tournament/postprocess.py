"""After the units: simulate every cell (batched per simulator), run the audit checks, write files.

Verification axes (DESIGN section 4): the riskfolio backend and the reference simulator re-run the
base-setting trials; their differences are recorded as ``backend_disagreement`` and
``simulator_disagreement`` checks, never counted as trials.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from audit.checks import (SimConventions, check_bankruptcy, check_directional, check_funnel,
                          check_metric_mismatch, check_volatility_band, make_result, CheckStatus,
                          metrics_with_and_without, quarantine_windows, summarize_checks)
from audit.raw_audit import simulation_record_data
from contracts.cell import CellKey
from contracts.enums import RecordType, SimulatorKind, SpecVersion
from market.panel import simple_returns
from simulation import CellPlan, SimulationConfig, WindowPlan, simulate
from tournament.config import TournamentConfig
from tournament.market_io import Market
from tournament.records import spec_of
from tournament.relaxations import add_allocation_counts
from tournament.rundir import write_json, write_parquet
from tournament.unit import UnitResult, alloc_key

#: vectorbt vs reference, per daily return: frictionless they agree to 1e-10; with costs the
#: simulation pillar documents the order-of-fills difference (see simulation.compare).
SIM_TOLERANCE = 1e-6
#: riskfolio vs native weights on well-posed problems (allocation pillar's agreement target).
BACKEND_TOLERANCE = 1e-4


def build_plans(cfg: TournamentConfig, sched: dict, results: dict[str, UnitResult]) -> dict[str, tuple[CellKey, CellPlan]]:
    plans = {}
    for cell in cfg.cells():
        sid = cell.setting.id
        wps = []
        for w in sched[sid]:
            res = results[f"{sid}/{w.index}"]
            sel = res.selections[cell.engine]
            alloc = res.allocations[alloc_key(cell.engine, cell.profile, cell.backend)]
            wps.append(WindowPlan(window=w, atoms=sel.atoms, weights=dict(alloc.weights)))
        plans[cell.id] = (cell, CellPlan(cell_id=cell.id, windows=wps))
    return plans


def _weights_frame(plans) -> pd.DataFrame:
    rows = []
    for cid, (_, plan) in plans.items():
        for wp in plan.windows:
            by_id = {a.id: a for a in wp.atoms}
            for aid, w in sorted(wp.weights.items()):
                rows.append((cid, wp.window.index, aid, by_id[aid].symbol, by_id[aid].direction.value, float(w)))
    return pd.DataFrame(rows, columns=["cell_id", "window", "atom_id", "symbol", "direction", "weight"])


def _windows_frame(sched: dict, dates: pd.DatetimeIndex) -> pd.DataFrame:
    rows = []
    for sid, ws in sched.items():
        for w in ws:
            rows.append((sid, w.index, dates[w.cutoff], dates[w.fill_bar], dates[w.test_start],
                         dates[w.test_end], dates[w.train_start]))
    return pd.DataFrame(rows, columns=["setting_id", "window", "cutoff", "fill", "test_start", "test_end",
                                       "train_start"])


def finish_run(run_dir: Path, cfg: TournamentConfig, market: Market, sched: dict,
               results: dict[str, UnitResult], append) -> tuple[Path | None, dict]:
    P = market.calendar.periods_per_year
    closes = market.closes
    plans = build_plans(cfg, sched, results)
    sim_cfg = SimulationConfig(fees=cfg.costs.fees, slippage=cfg.costs.slippage,
                               liquidation_floor=cfg.liquidation_floor, periods_per_year=P, gap=cfg.gap)
    outs = []
    for kind in cfg.simulators:
        group = [p for c, p in plans.values() if c.simulator == kind]
        if group:
            outs.append(simulate(closes, group, SimulatorKind(kind), sim_cfg))
    returns = pd.concat([o.returns for o in outs], ignore_index=True)
    positions = pd.concat([o.positions for o in outs], ignore_index=True)
    exposure = pd.concat([o.exposure for o in outs], ignore_index=True)
    summary = pd.concat([o.summary for o in outs], ignore_index=True).set_index("cell_id")
    events = [e for o in outs for e in o.events]

    weights = _weights_frame(plans)
    cells = pd.DataFrame([{"cell_id": cid, **c.dims(),
                           "sim_total_return": float(summary.at[cid, "sim_total_return"]),
                           "sim_sharpe": float(summary.at[cid, "sim_sharpe"]),
                           "sim_max_drawdown": float(summary.at[cid, "sim_max_drawdown"]),
                           "liquidated": bool(summary.at[cid, "liquidated"]),
                           "n_windows": int(summary.at[cid, "n_windows"])} for cid, (c, _) in plans.items()])
    write_parquet(run_dir, "windows.parquet", _windows_frame(sched, closes.index))
    write_parquet(run_dir, "weights.parquet", weights)
    write_parquet(run_dir, "returns.parquet", returns)
    write_parquet(run_dir, "positions.parquet", positions)
    write_parquet(run_dir, "exposure.parquet", exposure)
    write_parquet(run_dir, "cells.parquet", cells)

    _simulation_records(append, plans, returns, P)
    for i, ev in enumerate(events):
        append(RecordType.SIMULATION, SpecVersion.RUN, {"key": f"simevent:{i}", "event": ev})

    checks, quarantined = _checks(cfg, market, sched, plans, results, returns, weights, positions, summary, P)
    for ch in checks:
        key = f"check:{ch.name}:{ch.cell_id}:{ch.window}"
        append(RecordType.CHECK, SpecVersion.RUN, {"key": key, **ch.to_ledger_data()})
    summary_checks = summarize_checks(checks)

    base_cells = [cid for cid, (c, _) in plans.items() if c.setting == cfg.settings()[0]]
    with_without = metrics_with_and_without(returns[returns.cell_id.isin(base_cells)], quarantined, P)

    from tournament.matrix import performance_matrix  # statistics are heavy; import late
    matrix, stats = performance_matrix(cfg, plans, returns, checks, P)
    matrix = add_allocation_counts(matrix, plans, results)  # n_relaxed, n_fallback (issue 19)
    matrix.to_csv(run_dir / "performance_matrix.csv", index=False, float_format="%.10g")
    stats["checks"] = summary_checks
    stats["quarantine"] = {"windows": quarantined, "metrics_with_and_without": with_without}
    stats["htr_stages"] = _htr_distribution(results)
    write_json(run_dir / "bootstrap.json", _finite(stats))
    append(RecordType.CHECK, SpecVersion.RUN, {"key": "check_summary", "name": "summary", **_finite(summary_checks)})
    report = None
    if cfg.report:
        from reports import render_report
        report = render_report(run_dir)
    return report, _run_metrics(matrix, stats)


def _run_metrics(matrix: pd.DataFrame, stats: dict) -> dict:
    """What run_end records as the run's metrics: every cell's headline figures and the run-level
    statistics (PBO, verdicts, effective trials, check counts)."""
    cols = ["sharpe", "sharpe_ci_low", "sharpe_ci_high", "cagr", "max_drawdown", "annual_volatility", "psr",
            "dsr", "liquidated", "drift"]
    cells = {r["cell_id"]: {c: r[c] for c in cols} for r in matrix.to_dict("records")}
    return _finite({"cells": cells, "pbo": stats.get("pbo", {}).get("pbo"),
                    "effective_trials": stats.get("effective_trials", {}).get("n_effective"),
                    "n_trials": stats.get("n_trials"), "verdicts": stats["paired_tests"]["verdicts"],
                    "checks": stats["checks"]["by_status"], "htr_stages": stats["htr_stages"]})


def _htr_distribution(results: dict[str, UnitResult]) -> dict:
    out: dict[str, dict] = {}
    for res in results.values():
        for engine, sel in res.selections.items():
            d = out.setdefault(engine, {"stages": {}, "hardened": 0, "windows": 0})
            st = str(sel.htr_stage)
            d["stages"][st] = d["stages"].get(st, 0) + 1
            d["hardened"] += bool(sel.manifest.get("hardened"))
            d["windows"] += 1
    return out


def _finite(obj):
    """Replace non-finite floats by None (JSON files are strict)."""
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _simulation_records(append, plans, returns: pd.DataFrame, P: int) -> None:
    """One simulation record per setting and window, with every cell's daily returns (raw audit)."""
    by_setting: dict[str, list[str]] = {}
    for cid, (c, _) in plans.items():
        by_setting.setdefault(c.setting.id, []).append(cid)
    for sid, cids in by_setting.items():
        sub = returns[returns.cell_id.isin(cids)]
        for k, g in sub.groupby("window", sort=True):
            piv = g.pivot(index="date", columns="cell_id", values="return").sort_index()
            data = simulation_record_data(int(k), list(piv.index), {c: piv[c].to_numpy() for c in piv.columns},
                                          P, setting_id=sid, key=f"simulation:{sid}/{int(k)}")
            append(RecordType.SIMULATION, SpecVersion.RUN, data)


def _checks(cfg, market, sched, plans, results, returns, weights, positions, summary, P) -> tuple[list, list[int]]:
    checks = []
    base = cfg.settings()[0]
    ret_by_cell = {cid: g.sort_values("date") for cid, g in returns.groupby("cell_id")}
    w_by_cell = {cid: g for cid, g in weights.groupby("cell_id", sort=False)}
    p_by_cell = {cid: g for cid, g in positions.groupby("cell_id", sort=False)}
    empty_w, empty_p = weights.iloc[:0], positions.iloc[:0]
    for cid, (cell, plan) in plans.items():
        g = ret_by_cell[cid]
        r = g["return"].to_numpy()
        checks.append(check_metric_mismatch(
            cid, r, sim_sharpe=float(summary.at[cid, "sim_sharpe"]),
            sim_max_drawdown=float(summary.at[cid, "sim_max_drawdown"]),
            sim_total_return=float(summary.at[cid, "sim_total_return"]),
            conventions=SimConventions(periods_per_year=P)))
        checks.append(check_volatility_band(cid, cell.profile, r, P, g["window"].to_numpy()))
        checks.append(check_directional(cid, {wp.window.index: wp.atoms for wp in plan.windows},
                                        w_by_cell.get(cid, empty_w).reset_index(drop=True),
                                        p_by_cell.get(cid, empty_p).reset_index(drop=True)))
    checks += check_bankruptcy(returns)
    # funnel per unit and engine
    for res in results.values():
        for engine, sel in res.selections.items():
            if sel.funnel is None:
                continue
            winners = [a.id for a in sel.atoms]
            checks.append(check_funnel(res.key.window.index, sel.funnel, winners, list(sel.clusters),
                                       engine=engine, cell_id=f"{res.key.setting.id}:{engine}"))
    # quarantine on the base setting's windows (market-wide moves of every listed symbol)
    dates = market.closes.index
    wod = {}
    for w in sched[base.id]:
        for b in range(w.test_start, w.test_end + 1):
            wod[dates[b]] = w.index
    mret = simple_returns(market.closes)
    q_ids, q_checks = quarantine_windows(mret, pd.Series(wod))
    checks += q_checks
    checks += _verification_checks(cfg, plans, ret_by_cell)
    return checks, sorted(int(k) for k in q_ids)


def _verification_checks(cfg, plans, ret_by_cell) -> list:
    """Simulator disagreement (vectorbt vs reference) and backend disagreement (riskfolio vs native)."""
    out = []
    index = {(c.engine, c.profile, c.backend, c.simulator, c.setting.id): cid for cid, (c, _) in plans.items()}
    for (e, p, b, s, sid), cid in index.items():
        if s == SimulatorKind.VECTORBT:
            other = index.get((e, p, b, SimulatorKind.REFERENCE, sid))
            if other is not None:
                a = ret_by_cell[cid]["return"].to_numpy()
                r = ret_by_cell[other]["return"].to_numpy()
                diff = float(np.max(np.abs(a - r))) if len(a) == len(r) else float("inf")
                st = CheckStatus.PASS if diff <= SIM_TOLERANCE else CheckStatus.FAIL
                out.append(make_result("simulator_disagreement", st, {
                    "vectorbt_cell": cid, "reference_cell": other, "max_abs_return_diff": diff,
                    "tolerance": SIM_TOLERANCE}, cell_id=cid))
    for (e, p, b, s, sid), cid in index.items():
        if b.value == "native" and s == cfg.trial_simulator:
            other = index.get((e, p, type(b)("riskfolio"), s, sid))
            if other is None:
                continue
            wa, wb = plans[cid][1].windows, plans[other][1].windows
            diffs = []
            for x, y in zip(wa, wb):
                keys = set(x.weights) | set(y.weights)
                diffs.append(max((abs(x.weights.get(k, 0.0) - y.weights.get(k, 0.0)) for k in keys), default=0.0))
            worst = int(np.argmax(diffs)) if diffs else 0
            md = float(max(diffs, default=0.0))
            st = CheckStatus.PASS if md <= BACKEND_TOLERANCE else CheckStatus.WARN
            out.append(make_result("backend_disagreement", st, {
                "native_cell": cid, "riskfolio_cell": other, "max_abs_weight_diff": md,
                "worst_window": wa[worst].window.index if wa else None, "tolerance": BACKEND_TOLERANCE},
                cell_id=cid))
    return out
