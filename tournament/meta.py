"""The multi-sleeve meta-portfolio (issue 17): sleeves' OOS returns -> meta walk-forward -> meta cells.

Called by ``tournament.postprocess.finish_run`` when the config has a ``meta:`` block:

1. ``tournament.meta_sleeves.sleeve_returns``: each sleeve's out-of-sample daily returns (a reused cell
   of the run, or its own walk-forward on its own market and calendar);
2. the **meta calendar** is the union of the sleeves' trading days (``meta_align.union_calendar``),
   from the first sleeve OOS day to the last day every sleeve is marked; its annualisation is
   ``P = 365`` when a sleeve trades 7 days a week (the union then holds every calendar day: a year is
   365 meta bars), else 252. A run whose own calendar has another P is refused (``ConfigError``): the
   ledger's raw audit states one P per run;
3. meta windows on that calendar: the first cut-off is the first day a sleeve has ``min_history`` OOS
   returns, then every ``step_size`` days; a window's decision (``meta_alloc.meta_weights``) reads only
   sleeve returns dated at or before its cut-off and fills ``gap`` days later, as every cell (a fill on a
   day a sleeve's market is closed trades it at its last mark, its previous close; the move since then is
   earned on its next trading day, by the new weights);
4. each allocator x simulator is a **meta cell**: ``simulation.simulate`` on the panel of sleeve values
   (``meta_align.nav_panel``: stale marks on a sleeve's closed days), one LONG ``rating`` atom per
   sleeve (gate always 1), so the weights drift between rebalances, the run's fees and slippage are
   charged on the sleeve turnover and the liquidation floor applies, as for any cell.

Outputs (``MetaOutcome``): the meta cells' and the walked-forward sleeves' rows for ``returns.parquet``
(every series on the meta calendar: a weekday sleeve's weekend days carry its stale mark, 0), their
checks (metric mismatch against each simulator's own figures, volatility band, bankruptcy), the
ledger records (``meta_sleeves``: the sleeves' configurations and digests; one ``meta_allocation`` per
allocator and window: weights, eligible sleeves, history counts, the digest of each sleeve's returns the
decision read; ``simulation`` records of the meta and sleeve cells for the raw-return audit) and the
files ``meta/weights.parquet`` and ``meta/sleeves.json``. ``meta_matrix_rows`` and ``meta_summary``
(``tournament.meta_stats``) add the matrix rows and ``bootstrap.json["meta"]``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from contracts.atom import StrategyAtom
from contracts.cell import CellKey
from contracts.enums import Backend, Direction, Logic, Profile, RecordType, SimulatorKind, SpecVersion
from contracts.errors import ConfigError
from contracts.window import Window
from simulation import CellPlan, SimulationConfig, WindowPlan, simulate
from tournament.config import TournamentConfig
from tournament.meta_align import carry_align, marked_returns, nav_panel, union_calendar
from tournament.meta_alloc import MetaDecision, meta_weights, sleeve_covariance
from tournament.meta_sleeves import SleeveRun, series_sha256

#: the volatility band of each meta allocator (``bands`` are per profile): inverse volatility is HRP
#: without the clustering step, so it is held to the HRP band
PROFILE_OF = {"equal_weight": Profile.EQUAL_WEIGHT, "inverse_vol": Profile.HRP, "hrp": Profile.HRP,
              "min_variance": Profile.MIN_VARIANCE}


@dataclass
class MetaOutcome:
    sleeves: list[SleeveRun]
    calendar: pd.DatetimeIndex
    periods_per_year: int
    windows: list[Window]
    decisions: dict[str, list[MetaDecision]]          # allocator -> one per window
    cells: dict[str, CellKey]                          # meta cell id -> key
    sleeve_cells: dict[str, CellKey]                   # walked-forward sleeve cell id -> key
    returns: pd.DataFrame                              # rows to add to returns.parquet
    summaries: pd.DataFrame                            # cells.parquet-like frame of the added cells
    own_returns: pd.DataFrame                          # walked-forward sleeves on their own calendars
    events: list = field(default_factory=list)
    #: ex-ante diversification ratio per allocator and window (``ex_ante_ratios``; computed once, read
    #: by the ledger records and ``bootstrap.json["meta"]``)
    ex_ante: dict = field(default_factory=dict)

    def ex_ante_ratios(self) -> dict[str, list[float | None]]:
        """``diversification_ratio`` of every decision, per allocator in window order (computed at the
        first call; the ledger's ``meta_allocation`` records and ``meta_stats.meta_summary`` read it)."""
        if not self.ex_ante:
            series = {s.spec.name: s.returns for s in self.sleeves}
            self.ex_ante.update({a: [diversification_ratio(series, self.calendar, w, d, self)
                                     for w, d in zip(self.windows, ds)] for a, ds in self.decisions.items()})
        return self.ex_ante

    def marker(self) -> dict[str, str]:
        """``meta`` column of the matrix: ``meta:<allocator>`` or ``sleeve:<name>``."""
        out = {cid: f"meta:{c.engine.split(':')[1]}" for cid, c in self.cells.items()}
        out.update({s.cell_id: f"sleeve:{s.spec.name}" for s in self.sleeves})
        return out


def meta_engine(allocator: str, covariance: str) -> str:
    return f"meta:{allocator}" + (":lw" if covariance == "ledoit_wolf" else "")


def _atom(name: str) -> StrategyAtom:
    return StrategyAtom(id=StrategyAtom.make_id(name, Logic.RATING, Direction.LONG), symbol=name, identity=name,
                        direction=Direction.LONG, logic=Logic.RATING, cluster=0)


def meta_calendar(sleeves: list[SleeveRun]) -> tuple[pd.DatetimeIndex, int]:
    """The union of the sleeves' trading days up to the last day all of them are marked, and its P."""
    cal = union_calendar({s.spec.name: s.returns for s in sleeves})
    last = min(s.returns.index.max() for s in sleeves)
    P = 365 if any(s.calendar == "crypto" for s in sleeves) else 252
    return cal[cal <= last], P


def meta_windows(series: dict[str, pd.Series], cal: pd.DatetimeIndex, step: int, train_window: int,
                 min_history: int, gap: int) -> list[Window]:
    """Cut-offs every ``step`` meta days from the first day a sleeve has ``min_history`` OOS returns."""
    n = len(cal)
    counts = np.max([series[k].index.searchsorted(cal, side="right") for k in series], axis=0)
    ok = np.flatnonzero(counts >= min_history)
    if not len(ok):
        raise ConfigError(f"meta.min_history={min_history}: no sleeve has that many OOS returns")
    out, c = [], int(ok[0])
    while True:
        n_test = min(step, n - 1 - c)
        if n_test <= gap:
            break
        out.append(Window(index=len(out), cutoff=c, train_start=max(0, c - train_window + 1), step_size=step,
                          gap=gap, n_test=n_test))
        c += step
    if not out:
        raise ConfigError("meta: the sleeves' common span is shorter than one meta window")
    return out


def run_meta(cfg: TournamentConfig, market, main_returns: pd.DataFrame, run_P: int,
             derived_cache=None, walked: dict | None = None) -> MetaOutcome:
    """Sleeves, meta windows, decisions and the simulated meta cells (see module docstring).
    ``walked``: sleeves already walked forward by name (``meta_sleeves.sleeve_task``)."""
    from tournament.meta_sleeves import sleeve_returns

    spec = cfg.meta
    sleeves = sleeve_returns(cfg, market, main_returns, derived_cache, walked)
    series = {s.spec.name: s.returns for s in sleeves}
    cal, P = meta_calendar(sleeves)
    if P != run_P:
        raise ConfigError(f"meta calendar has {P} bars a year (sleeve calendars "
                          f"{sorted({s.calendar for s in sleeves})}) but the run's market has {run_P}: run the "
                          "tournament on the market with the widest calendar (a 7-day one when a sleeve is crypto)")
    windows = meta_windows(series, cal, spec.step_size, spec.train_window, spec.min_history, cfg.gap)
    decisions = {a: [meta_weights(series, cal, w.cutoff, a, spec.train_window, spec.min_history, spec.covariance)
                     for w in windows] for a in spec.allocators}
    nav = nav_panel({k: v[v.index <= cal[-1]] for k, v in series.items()}, cal)
    atoms = [_atom(s.spec.name) for s in sleeves]
    ids = {s.spec.name: a.id for s, a in zip(sleeves, atoms)}
    cells: dict[str, CellKey] = {}
    frames, summaries, events = [], [], []
    sim_cfg = SimulationConfig(fees=cfg.costs.fees, slippage=cfg.costs.slippage,
                               liquidation_floor=cfg.liquidation_floor, periods_per_year=P, gap=cfg.gap)
    for kind in cfg.simulators:
        plans = []
        for a in spec.allocators:
            cell = CellKey(engine=meta_engine(a, spec.covariance), profile=PROFILE_OF[a], backend=Backend.NATIVE,
                           simulator=kind, step_size=spec.step_size, train_window=spec.train_window,
                           feature_lookback=spec.min_history)
            cells[cell.id] = cell
            wps = [WindowPlan(window=w, atoms=atoms, weights={ids[n]: v for n, v in d.weights.items() if v > 0})
                   for w, d in zip(windows, decisions[a])]
            plans.append(CellPlan(cell_id=cell.id, windows=wps))
        out = simulate(nav, plans, SimulatorKind(kind), sim_cfg)
        frames.append(out.returns)
        summaries.append(out.summary)
        events += out.events
    summ = pd.concat(summaries, ignore_index=True)
    summ = summ.assign(**{k: [cells[c].dims()[k] for c in summ["cell_id"]] for k in cells[summ["cell_id"][0]].dims()})
    # walked-forward sleeves: their returns on the meta calendar (stale marks) for returns.parquet
    sleeve_cells, own, marked_rows, own_summ = {}, [], [], []
    full_cal = union_calendar(series)
    for s in sleeves:
        if s.reused:
            continue
        sleeve_cells[s.cell_id] = s.cell
        span = full_cal[(full_cal >= s.returns.index.min()) & (full_cal <= s.returns.index.max())]
        r = marked_returns(s.returns, span)
        win = s.windows.reindex(span).ffill().astype("int64")
        liq = s.liquidated.reindex(span).ffill().astype(bool)  # its own flag, carried over closed days
        marked_rows.append(pd.DataFrame({"cell_id": s.cell_id, "date": span, "window": win.to_numpy(),
                                         "return": r.to_numpy(), "liquidated": liq.to_numpy()}))
        own.append(pd.DataFrame({"cell_id": s.cell_id, "date": s.returns.index, "window": s.windows.to_numpy(),
                                 "return": s.returns.to_numpy(),
                                 "liquidated": s.liquidated.to_numpy()}))
        own_summ.append({"cell_id": s.cell_id, **s.cell.dims(), **{k: s.summary[k] for k in (
            "sim_total_return", "sim_sharpe", "sim_max_drawdown", "liquidated", "n_windows")}})
    returns = pd.concat(frames + marked_rows, ignore_index=True)
    returns["cell_id"] = returns["cell_id"].astype("string")
    own_returns = (pd.concat(own, ignore_index=True) if own else returns.iloc[:0].copy())
    summaries = pd.concat([summ, pd.DataFrame(own_summ)], ignore_index=True) if own_summ else summ
    from contracts.schemas import RUN_SCHEMAS
    summaries = summaries[[c.name for c in RUN_SCHEMAS["cells.parquet"]]]
    return MetaOutcome(sleeves, cal, P, windows, decisions, cells, sleeve_cells, returns, summaries,
                       own_returns, events)


def weights_frame(outcome: MetaOutcome) -> pd.DataFrame:
    """``meta/weights.parquet``: one row per allocator, window and sleeve (decision at the cut-off)."""
    cal = outcome.calendar
    rows = []
    for a, ds in outcome.decisions.items():
        for w, d in zip(outcome.windows, ds):
            for name in sorted(d.weights):
                rows.append((a, w.index, cal[w.cutoff], cal[w.fill_bar], cal[w.test_start], cal[w.test_end], name,
                             float(d.weights[name]), name in d.eligible, int(d.n_history[name]), int(d.n_obs)))
    return pd.DataFrame(rows, columns=["allocator", "window", "cutoff", "fill", "test_start", "test_end", "sleeve",
                                       "weight", "eligible", "n_history", "n_obs"])


def sleeves_document(outcome: MetaOutcome, cfg: TournamentConfig) -> dict:
    """``meta/sleeves.json``: each sleeve's configuration, cell, calendar and digests, and the meta block."""
    cal = outcome.calendar
    out = []
    for s in outcome.sleeves:
        r = s.returns
        out.append({"name": s.spec.name, "spec": s.spec.model_dump(mode="json"), "cell_id": s.cell_id,
                    "reused_cell": s.reused, "calendar": s.calendar,
                    "trading_days": "all" if s.calendar == "crypto" else "weekdays",
                    "n_oos": int(len(r)), "first_date": r.index.min().isoformat(),
                    "last_date": r.index.max().isoformat(), "returns_sha256": series_sha256(r),
                    "own_calendar_summary": s.summary, "provenance": s.provenance})
    return {"sleeves": out, "meta": cfg.meta.model_dump(mode="json"),
            "calendar": {"first": cal[0].isoformat(), "last": cal[-1].isoformat(), "n_days": int(len(cal)),
                         "periods_per_year": outcome.periods_per_year,
                         "rule": "union of the sleeves' trading days; stale marks on a sleeve's closed days"},
            "cells": {cid: c.dims() for cid, c in sorted(outcome.cells.items())}}


def ledger_records(append, outcome: MetaOutcome) -> None:
    """``meta_sleeves``, ``meta_allocation`` per allocator and window, and the ``simulation`` records of
    the added cells (one per meta window; one per walked-forward sleeve and its window)."""
    from audit.raw_audit import simulation_record_data

    cal = outcome.calendar
    append(RecordType.ALLOCATION, SpecVersion.RUN, {
        "key": "meta_sleeves", "kind": "meta_sleeves",
        "sleeves": {s.spec.name: {"cell_id": s.cell_id, "reused_cell": s.reused, "calendar": s.calendar,
                                  "returns_sha256": series_sha256(s.returns), "n_oos": int(len(s.returns)),
                                  "panel_sha256": s.provenance.get("panel_sha256")} for s in outcome.sleeves}})
    series = {s.spec.name: s.returns for s in outcome.sleeves}
    ratios = outcome.ex_ante_ratios()
    for a, ds in outcome.decisions.items():
        cids = sorted(c for c, k in outcome.cells.items() if k.engine.split(":")[1] == a)
        for w, d, dr in zip(outcome.windows, ds, ratios[a]):
            seen = {n: series_sha256(r[r.index <= cal[w.cutoff]]) for n, r in series.items()}
            append(RecordType.ALLOCATION, SpecVersion.RUN, {
                "key": f"meta_allocation:{a}/{w.index}", "kind": "meta_allocation", "allocator": a, "cells": cids,
                "window": w.index, "cutoff": cal[w.cutoff].isoformat(), "fill": cal[w.fill_bar].isoformat(),
                "weights": d.weights, "eligible": list(d.eligible), "n_history": d.n_history, "n_obs": d.n_obs,
                "sleeve_returns_sha256": seen,
                "diversification_ratio": dr})
    groups = [("meta", outcome.returns[outcome.returns.cell_id.isin(list(outcome.cells))])]
    for cid, c in outcome.sleeve_cells.items():
        groups.append((c.engine, outcome.returns[outcome.returns.cell_id == cid]))
    for tag, sub in groups:
        for k, g in sub.groupby("window", sort=True):
            piv = g.pivot(index="date", columns="cell_id", values="return").sort_index()
            append(RecordType.SIMULATION, SpecVersion.RUN, simulation_record_data(
                int(k), list(piv.index), {c: piv[c].to_numpy() for c in piv.columns}, outcome.periods_per_year,
                setting_id=tag, key=f"simulation:{tag}/{int(k)}"))
    for i, ev in enumerate(outcome.events):
        append(RecordType.SIMULATION, SpecVersion.RUN, {"key": f"simevent:meta:{i}", "event": ev})


def diversification_ratio(series: dict[str, pd.Series], cal: pd.DatetimeIndex, w: Window, d: MetaDecision,
                          outcome: MetaOutcome) -> float | None:
    """Ex-ante diversification ratio of a decision: ``sum_i w_i sigma_i / sqrt(w' S w)`` with ``S`` the
    covariance the allocator read (sample; carry-aligned, train window); None with fewer than two
    eligible sleeves (it is 1 by definition)."""
    if len(d.eligible) < 2:
        return None
    start = cal[w.cutoff - (w.cutoff - w.train_start + 1)] if w.train_start > 0 else None
    x = carry_align({n: series[n] for n in d.eligible}, start, cal[w.cutoff])
    cov = sleeve_covariance(x.to_numpy(), "sample")
    wv = np.array([d.weights[n] for n in d.eligible])
    return float(wv @ np.sqrt(np.diag(cov)) / np.sqrt(wv @ cov @ wv))
