"""After the units: simulate every cell (batched per simulator), write the files, run the audit checks.

The checks are ``audit.run_audit.audit_run`` over the files just written (one implementation, in
audit/): each simulator's own metrics are compared under that simulator's stated conventions
(``SIM_CONVENTIONS``). Verification axes (DESIGN section 4): the riskfolio backend and the reference
simulator re-run the base-setting trials; their differences are recorded as ``backend_disagreement``
and ``simulator_disagreement`` checks, never counted as trials. Every file written is digested in an
``artifact`` ledger record at once (``record_file``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from audit.checks import SimConventions, metrics_with_and_without, summarize_checks
from audit.raw_audit import simulation_record_data
from audit.run_audit import audit_run, write_checks
from contracts.enums import ExecutorKind, Profile, RecordType, SimulatorKind, SpecVersion
from market.panel import simple_returns
from simulation import CellPlan, SimulationConfig, WindowPlan
from tournament.bands import apply_to_matrix, resolve_bands
from tournament.baselines import baseline_plans, baseline_rows, selection_artifact, vs_best_trial
from tournament.config import TournamentConfig
from tournament.executors import Session
from tournament.market_io import Market
from tournament import post_tasks
from tournament.regimes import submit_regimes, write_regimes
from tournament.relaxations import add_allocation_counts
from tournament.rundir import candidates_path, write_json, write_parquet, write_parquet_parts
from tournament.unit import UnitContext, UnitResult, alloc_key
from tournament.verification import flag_reason, verification_frame, verification_sample, verification_summary


def sim_conventions(periods_per_year: int) -> dict[str, SimConventions]:
    """How each simulator computes its own metrics (``simulation.simulate``'s docstring): both use
    Sharpe ``mean/std(ddof=1)*sqrt(P)`` with rf 0; the reference simulator's drawdown high-water mark
    includes the initial capital, vectorbt's does not (``simulation.vbt_adapter.vbt_summary``)."""
    return {SimulatorKind.REFERENCE.value: SimConventions(periods_per_year=periods_per_year),
            SimulatorKind.VECTORBT.value: SimConventions(periods_per_year=periods_per_year,
                                                         drawdown_includes_initial_capital=False)}


@dataclass
class FinishOutcome:
    report: Path | None
    metrics: dict
    checks: dict
    integrity_failures: tuple[str, ...]
    no_position_cells: tuple[str, ...]
    no_position_windows: tuple[str, ...]
    n_cells: int = 0
    #: wall seconds of each post-unit phase (simulation:<simulator>, files, checks, statistics, report)
    seconds: dict = field(default_factory=dict)


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


def _verification_pairs(cfg: TournamentConfig, sched: dict, results: dict[str, UnitResult],
                        sample: set[int]) -> pd.DataFrame:
    """``verification.parquet``: every verification-backend allocation of the base setting beside the
    trial backend's (sampled verification; empty under ``verification: full``, whose verification
    allocations are cells)."""
    if cfg.verification != "sampled" or not cfg.verification_backends:
        return verification_frame([])
    base = cfg.settings()[0]
    trial = cfg.trial_backend
    cell_of = {(c.engine, Profile(c.profile)): c.id for c in cfg.cells()
               if c.setting == base and c.backend == trial and c.simulator == cfg.trial_simulator}
    pairs = []
    for w in sched[base.id]:
        res = results[f"{base.id}/{w.index}"]
        for e in cfg.engines:
            for p in cfg.profiles:
                a = res.allocations[alloc_key(e, p, trial)]
                for vb in cfg.verification_backends:
                    b = res.allocations.get(alloc_key(e, p, vb))
                    if b is not None:
                        reason = "sample" if w.index in sample else (flag_reason(a) or "other")
                        pairs.append((cell_of[(e, Profile(p))], w.index, a, b, reason))
    return verification_frame(pairs)


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
               results: dict[str, UnitResult], append, record_file, session: Session | None = None,
               sleeves=None) -> FinishOutcome:
    """``session``: the run's executor (``tournament.executors.Session``), which runs the simulation
    and the per-cell and per-pair statistics as tasks (``tournament.post_tasks``); ``None``: a serial
    session in this process. ``sleeves``: the meta sleeves' walk-forwards submitted before the units
    (``tournament.meta_hooks.submit_sleeves``; None: walked here)."""
    if session is None:
        with Session(UnitContext(market=market, config=cfg), ExecutorKind.SERIAL) as serial:
            return finish_run(run_dir, cfg, market, sched, results, append, record_file, serial, sleeves)
    P = market.calendar.periods_per_year
    closes = market.closes
    sec: dict[str, float] = {}
    tick = _Ticker(sec)
    warm = post_tasks.submit_warm_simulation(session)  # the workers are idle while the plans are built
    trial_plans = build_plans(cfg, sched, results)
    bl_plans, bl_info = baseline_plans(cfg, market, sched, results)
    plans = {**trial_plans, **bl_plans}  # every simulated cell; the baselines are never trials
    base = cfg.settings()[0]
    for w in sched[base.id]:  # the baselines' decisions, as files like any engine's
        path = candidates_path(run_dir, base.id, w.index).with_name("baselines.json")
        write_json(path, selection_artifact(bl_plans, base.id, w.index))
        record_file(path)
    tick("plans")
    sim_cfg = SimulationConfig(fees=cfg.costs.fees, slippage=cfg.costs.slippage,
                               liquidation_floor=cfg.liquidation_floor, periods_per_year=P, gap=cfg.gap)
    queued_sims = []  # every simulator's batches queued at once, gathered in the order of the files' rows
    for kind in cfg.simulators:
        group = [p for c, p in plans.values() if c.simulator == kind]
        if group:
            queued_sims.append((SimulatorKind(kind), submit_simulation(session, group, SimulatorKind(kind), sim_cfg)))
    # while the workers simulate: the files that do not need the simulation (written below in the
    # same order as ever, so the ledger's artifact records keep their order)
    weights = _weights_frame(plans)
    base_windows = [w.index for w in sched[base.id]]
    sample = verification_sample(cfg, sched) if cfg.verification == "sampled" else base_windows
    verification = _verification_pairs(cfg, sched, results, set(sample))
    windows_frame = _windows_frame(sched, closes.index)
    tick("plans")
    parts: list[post_tasks.SimPart] = []
    for kind, q in queued_sims:
        parts += q.result()
        tick(f"simulation:{kind.value}")
    del queued_sims
    if warm is not None:
        warm.result()  # done long ago (queued before the simulation); raises if it failed
    returns = pd.concat([o.returns for o in parts], ignore_index=True)
    summary = pd.concat([o.summary for o in parts], ignore_index=True).set_index("cell_id")
    events = [e for o in parts for e in o.events]
    # positions and exposure stay encoded per batch until their files are written (write_parquet_parts)
    encoded = {"positions.parquet": [o.positions for o in parts], "exposure.parquet": [o.exposure for o in parts]}
    del parts
    meta = None
    if cfg.meta is not None:  # issue 17: the meta-portfolio's cells join returns.parquet (tournament.meta)
        from tournament.meta_hooks import meta_after_simulation
        meta, returns = meta_after_simulation(run_dir, cfg, market, returns, P, record_file, sleeves)
        tick("meta")
    # issue 23: every statistic that needs only the returns is queued on the workers now (regime figures
    # first: the driver needs them first), while the driver writes the files and runs the checks
    regimes_q = submit_regimes(cfg, closes, market.benchmark, P, returns, session)
    from tournament.matrix import finish_matrix, submit_matrix  # statistics are heavy; import late
    from tournament.records import degenerate_windows
    series = {cid: g.sort_values("date").set_index("date")["return"] for cid, g in returns.groupby("cell_id")}
    matrix_q = submit_matrix(cfg, trial_plans, returns, P, degenerate_windows(results), session,
                             extra={cid: series[cid] for cid in bl_plans}, series=series)
    tick("statistics")

    cells = pd.DataFrame([{"cell_id": cid, **c.dims(),
                           "sim_total_return": float(summary.at[cid, "sim_total_return"]),
                           "sim_sharpe": float(summary.at[cid, "sim_sharpe"]),
                           "sim_max_drawdown": float(summary.at[cid, "sim_max_drawdown"]),
                           "liquidated": bool(summary.at[cid, "liquidated"]),
                           "n_windows": int(summary.at[cid, "n_windows"])} for cid, (c, _) in plans.items()])
    for name, frame in (("windows.parquet", windows_frame), ("weights.parquet", weights),
                        ("returns.parquet", returns), ("positions.parquet", None), ("exposure.parquet", None),
                        ("cells.parquet", cells), ("verification.parquet", verification)):
        if frame is None:  # batch by batch, each batch's rows freed once written
            blobs = encoded.pop(name)
            record_file(write_parquet_parts(run_dir, name, _drain(blobs)))
        else:
            record_file(write_parquet(run_dir, name, frame))
    regimes = write_regimes(run_dir, cfg, closes, market.benchmark, P, returns, trial_plans, record_file,
                            session, regimes_q)  # issue 20
    tick("files")

    _simulation_records(append, plans, returns, P)
    if meta is not None:  # issue 17: meta_sleeves, meta_allocation and the meta cells' simulation records
        from tournament.meta import ledger_records
        tick("ledger")
        ledger_records(append, meta)
        tick("meta")
    for i, ev in enumerate(events):
        append(RecordType.SIMULATION, SpecVersion.RUN, {"key": f"simevent:{i}", "event": ev})
    tick("ledger")

    bands = resolve_bands(cfg, market, sched[base.id])
    audit = audit_run(run_dir, conventions=sim_conventions(P), liquidation_floor=cfg.liquidation_floor,
                      base_setting_id=base.id, market_returns=simple_returns(closes),
                      trial_simulator=cfg.trial_simulator.value,
                      bands=bands["bands"], drift_threshold=bands["drift_threshold"],
                      submit=partial(post_tasks.submit_call, session))  # its two heaviest parts on the workers
    checks, quarantined = audit.checks, audit.quarantined
    if meta is not None:  # issue 17: mismatch, band and bankruptcy of the meta and sleeve cells (integrity too)
        from tournament.meta_hooks import meta_checks_for
        tick("checks")
        audit.checks.extend(meta_checks_for(meta, cfg, bands, P))
        tick("meta")
        checks = audit.checks
    write_checks(append, checks)
    summary_checks = summarize_checks(checks)

    base_cells = [cid for cid, (c, _) in plans.items() if c.setting == base]
    with_without = metrics_with_and_without(returns[returns.cell_id.isin(base_cells)], quarantined, P)
    tick("checks")

    matrix, stats, bl_figures = finish_matrix(matrix_q, checks)
    matrix = add_allocation_counts(matrix, trial_plans, results)  # n_relaxed, n_fallback (issue 19)
    matrix["baseline"] = False
    bl_rows = baseline_rows(cfg, bl_plans, series, P, list(matrix.columns), bl_figures).assign(baseline=True)
    for col in ("n_relaxed", "n_fallback"):
        if col in bl_rows:
            bl_rows[col] = 0
    matrix = pd.concat([matrix, bl_rows], ignore_index=True) if len(bl_rows) else matrix
    if meta is not None:  # issue 17: meta and walked-forward sleeve rows, the ``meta`` column
        from tournament.meta_stats import meta_matrix
        tick("statistics")
        matrix = meta_matrix(cfg, matrix, meta, series, P, int(stats["n_trials"]))
        tick("meta")
    matrix = _mark_no_position(apply_to_matrix(matrix, bands), audit.no_position_cells)
    matrix = _mark_verification(matrix, checks)
    tick("statistics")
    matrix.to_csv(run_dir / "performance_matrix.csv", index=False, float_format="%.10g")
    record_file(run_dir / "performance_matrix.csv")
    stats["checks"] = summary_checks
    stats["quarantine"] = {"windows": quarantined, "metrics_with_and_without": with_without}
    stats["htr_stages"] = _htr_distribution(results)
    stats["verification"] = verification_summary(verification, cfg.verification, sample, len(base_windows),
                                                 [b.value for b in cfg.verification_backends])
    stats["no_position"] = {"cells": audit.no_position_cells, "windows": audit.no_position_windows}
    stats["bands"] = bands
    stats["regimes"] = regimes
    stats["baselines"] = {**bl_info, "vs_best_trial": _finite(vs_best_trial(cfg, matrix, series, P))}
    if meta is not None:  # issue 17
        from tournament.meta_stats import meta_summary
        tick("files")
        stats["meta"] = _finite(meta_summary(cfg, matrix, meta, series, P))
        tick("meta")
    write_json(run_dir / "bootstrap.json", _finite(stats))
    record_file(run_dir / "bootstrap.json")
    append(RecordType.CHECK, SpecVersion.RUN, {"key": "check_summary", "name": "summary", **_finite(summary_checks)})
    tick("files")
    report = None
    if cfg.report:
        from reports import render_report
        report = render_report(run_dir)
        tick("report")
    return FinishOutcome(report, _run_metrics(matrix, stats), summary_checks, tuple(audit.integrity_failures),
                         tuple(audit.no_position_cells), tuple(audit.no_position_windows),
                         len(plans) + (len(meta.cells) + len(meta.sleeve_cells) if meta is not None else 0), sec)


def submit_simulation(session: Session, plans: list[CellPlan], kind: SimulatorKind, sim_cfg: SimulationConfig):
    """``simulation.simulate`` of ``plans`` queued as tasks on the session's workers (closes from each
    worker's market, ``Session.submit``: no wait), one per batch of contiguous cells cut by
    ``post_tasks.sim_batches`` (a memory budget of bars x columns), in the plans' order; ``result()``
    is the list of parts: concatenated, their frames, summaries and events are those of one call (a
    cell's simulation depends on its own plan and the closes only)."""
    return session.submit(post_tasks.simulate_task, [post_tasks.SimBatch(b, kind.value, sim_cfg)
                                                     for b in post_tasks.sim_batches(plans)])


def _drain(items: list):
    """Yield ``items`` from the front, removing each from the list first (so the caller's list does not
    keep it alive once the consumer is done with it)."""
    items.reverse()
    while items:
        yield items.pop()


class _Ticker:
    """Adds the wall seconds since the previous tick to ``sec[name]`` (the per-phase profile)."""

    def __init__(self, sec: dict[str, float]):
        self.sec, self.t = sec, time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.sec[name] = self.sec.get(name, 0.0) + now - self.t
        self.t = now


#: matrix figures that mean nothing for a cell that never held a position (blank, not 0)
NO_POSITION_BLANK = ("sharpe", "sharpe_ci_low", "sharpe_ci_high", "psr", "dsr")


def _mark_no_position(matrix: pd.DataFrame, cells: list[str]) -> pd.DataFrame:
    """``no_position`` column; a cell that never held a position gets blank Sharpe, CI, PSR and DSR
    (its returns are all 0: "no position", not a Sharpe of 0)."""
    out = matrix.copy()
    mask = out["cell_id"].isin(cells)
    out["no_position"] = mask
    for col in NO_POSITION_BLANK:
        if col in out.columns:
            out[col] = out[col].astype("float64")
            out.loc[mask, col] = np.nan
    return out


def _mark_verification(matrix: pd.DataFrame, checks) -> pd.DataFrame:
    """``verified_windows`` and ``backend_max_abs_weight_diff`` columns from the ``backend_disagreement``
    checks: per native cell, the base windows the verification backend allocated (``;``-separated; "all"
    under ``verification: full``) and the largest weight difference found; blank for other cells."""
    out = matrix.copy()
    wins, diff = {}, {}
    for c in checks:
        if c.name != "backend_disagreement" or c.cell_id is None:
            continue
        d = c.details or {}
        ws = d.get("windows_verified")
        wins[c.cell_id] = ";".join(str(int(k)) for k in ws) if ws is not None else "all"
        diff[c.cell_id] = d.get("max_abs_weight_diff")
    out["verified_windows"] = [wins.get(str(c), "") for c in out["cell_id"]]
    out["backend_max_abs_weight_diff"] = np.array([np.nan if diff.get(str(c)) is None else float(diff[str(c)])
                                                   for c in out["cell_id"]], dtype=np.float64)
    return out


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
