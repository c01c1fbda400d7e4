"""The meta-portfolio's matrix rows, checks and ``bootstrap.json["meta"]`` (issue 17).

Trials. A meta cell is a configuration chosen among others, and so is a sleeve, so the deflation of a
meta cell or of a walked-forward sleeve counts every configuration tried in the run:
``N = n_trials of the tournament (its trial cells) + walked-forward sleeves + meta allocators`` (one
trial per allocator: the trial simulator's cell; the other simulator re-runs the same decisions), with
the variance of the per-period Sharpes of all those series (each over its own dates), in
``deflated_sharpe(n_trials=N, sr_variance=v)`` (the raw reading, as ``statistics.dsr_method: raw``). The
meta and sleeve rows have ``trial = False``: the tournament's PBO, paired tests, SPA and MCS compare
trials on one market's common dates, which sleeves of other markets and calendars do not share; a
reused sleeve is a trial cell of the run already (its row keeps its own figures).

Matrix figures of every added row are computed on its series in ``returns.parquet`` (the meta calendar,
the run's P), so ``tournament audit recompute`` reproduces them from the ledger alone.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from audit.checks import SimConventions
from audit.metrics import compute_metrics
from audit.run_audit import check_cells, simulator_disagreement
from audit.statistics import deflated_sharpe, paired_sharpe_test, probabilistic_sharpe, sharpe_ci
from tournament.config import TournamentConfig
from tournament.meta import MetaOutcome
from tournament.meta_align import carry_align


def meta_checks(out: MetaOutcome, conventions: dict[str, SimConventions], own_conventions, cfg: TournamentConfig,
                bands: dict) -> list:
    """Metric mismatch, volatility band and bankruptcy of the meta cells (meta calendar, each simulator's
    own figures) and of the walked-forward sleeves (their own calendar and simulation)."""
    summ = out.summaries
    meta_rows = summ[summ["cell_id"].isin(list(out.cells))].reset_index(drop=True)  # check_frame reindexes
    kw = dict(liquidation_floor=cfg.liquidation_floor, bands=bands["bands"], drift_threshold=bands["drift_threshold"])
    res = check_cells(meta_rows, out.returns[out.returns.cell_id.isin(list(out.cells))].reset_index(drop=True),
                      conventions, **kw)
    res += meta_simulator_disagreement(out)
    sl = summ[summ["cell_id"].isin(list(out.sleeve_cells))]
    for s in out.sleeves:
        if s.reused:
            continue
        P = s.provenance["periods_per_year"]
        res += check_cells(sl[sl.cell_id == s.cell_id].reset_index(drop=True),
                           out.own_returns[out.own_returns.cell_id == s.cell_id].reset_index(drop=True),
                           own_conventions(P), **kw)
    return res


def meta_simulator_disagreement(out: MetaOutcome) -> list:
    """``simulator_disagreement`` of each meta allocator's vectorbt and reference cells (same decisions):
    the largest daily return difference against ``audit.run_audit.SIM_TOLERANCE``, as for any cell pair."""
    by = {(k.engine, k.simulator.value): cid for cid, k in out.cells.items()}
    ret = {str(c): g.sort_values("date") for c, g in out.returns.groupby("cell_id", observed=True)}
    res = []
    for (engine, sim), cid in sorted(by.items()):
        other = by.get((engine, "reference"))
        if sim != "vectorbt" or other is None:
            continue
        res.append(simulator_disagreement(cid, other, ret[cid], ret[other]))
    return res


def _trial_sharpes(matrix: pd.DataFrame, series: dict[str, pd.Series], extra: list[str]) -> np.ndarray:
    from audit.statistics.psr import sharpe_per_period

    cids = list(matrix.loc[matrix["trial"].astype(bool), "cell_id"]) + extra
    return np.array([float(sharpe_per_period(series[c].to_numpy().reshape(-1, 1), axis=0)[0][0]) for c in cids])


def meta_matrix(cfg: TournamentConfig, matrix: pd.DataFrame, out: MetaOutcome, series: dict[str, pd.Series],
                P: int, n_main_trials: int) -> pd.DataFrame:
    """The matrix with the meta cells' and walked-forward sleeves' rows and a ``meta`` column
    (``meta:<allocator>``, ``sleeve:<name>``, empty for the tournament's own cells)."""
    from tournament.matrix import series_seed

    trial_sim = cfg.trial_simulator
    meta_trials = [c for c, k in out.cells.items() if k.simulator == trial_sim]
    sleeve_trials = list(out.sleeve_cells)
    n = n_main_trials + len(sleeve_trials) + len(meta_trials)
    sr = _trial_sharpes(matrix, series, sleeve_trials + meta_trials)
    var = float(np.var(sr, ddof=1)) if sr.size > 1 else 0.0
    n_windows = {cid: int(out.returns[out.returns.cell_id == cid]["window"].nunique())
                 for cid in list(out.cells) + sleeve_trials}
    rows = []
    for cid, cell in {**out.cells, **out.sleeve_cells}.items():
        r = series[cid].to_numpy()
        m = compute_metrics(r, P)
        ci = sharpe_ci(r, P, seed=series_seed(cfg.seed, "sharpe_ci", r), n_boot=cfg.statistics.n_boot,
                       alpha=cfg.statistics.alpha)
        dsr = deflated_sharpe(r, n_trials=n, sr_variance=var) if n >= 1 else None
        liq = bool(out.returns.loc[out.returns.cell_id == cid, "liquidated"].any())
        rows.append({"cell_id": cid, **cell.dims(), "trial": False, "sharpe": ci.sharpe,
                     "sharpe_ci_low": ci.ci_low, "sharpe_ci_high": ci.ci_high, "cagr": m["cagr"],
                     "max_drawdown": m["max_drawdown"], "annual_volatility": m["annual_volatility"],
                     "psr": probabilistic_sharpe(r).psr, "dsr": dsr.dsr if dsr else np.nan,
                     "dsr_raw": dsr.dsr_raw if dsr else np.nan, "dsr_method": "raw (meta trials)",
                     "n_trials": float(n), "liquidated": liq, "drift": False, "n_windows": n_windows[cid],
                     "degenerate": ci.degenerate, "baseline": False})
    add = pd.DataFrame(rows).reindex(columns=list(matrix.columns))
    for col in ("n_relaxed", "n_fallback", "selection_degenerate_windows"):
        if col in add:
            add[col] = 0
    mat = pd.concat([matrix, add], ignore_index=True)
    marker = out.marker()
    mat["meta"] = [marker.get(str(c), "") for c in mat["cell_id"]]
    return mat


def _paired(cfg: TournamentConfig, a: pd.Series, b: pd.Series, P: int, key: str) -> dict[str, Any]:
    from tournament.unit import derive_seed

    ab = pd.concat([a, b], axis=1, join="inner").dropna()
    res = paired_sharpe_test(ab.iloc[:, 0].to_numpy(), ab.iloc[:, 1].to_numpy(), P,
                             seed=derive_seed(cfg.seed, "meta_vs_sleeve", key), n_boot=cfg.statistics.n_boot,
                             alpha=cfg.statistics.alpha)
    return {"n_days": int(len(ab)), **(res.to_dict() if hasattr(res, "to_dict") else dict(res))}


def realised_diversification(out: MetaOutcome, meta_cell: str, allocator: str) -> float | None:
    """Realised diversification ratio over the meta test span: ``sum_i wbar_i sigma_i / sigma_meta``,
    ``wbar_i`` the sleeve's average decided weight over the windows, ``sigma`` the standard deviations
    on the sleeves' common trading days (carry-aligned, the meta's own returns compounded alike)."""
    cal = out.calendar
    first = cal[out.windows[0].test_start]
    series = {s.spec.name: s.returns[s.returns.index >= first] for s in out.sleeves}
    g = out.returns[out.returns.cell_id == meta_cell]
    series["__meta__"] = pd.Series(g["return"].to_numpy(), index=pd.DatetimeIndex(g["date"]))
    x = carry_align(series, end=cal[-1])
    if len(x) < 3:
        return None
    wbar = {n: float(np.mean([d.weights[n] for d in out.decisions[allocator]])) for n in series if n != "__meta__"}
    num = sum(wbar[n] * float(x[n].std(ddof=1)) for n in wbar)
    return float(num / float(x["__meta__"].std(ddof=1)))


def meta_summary(cfg: TournamentConfig, matrix: pd.DataFrame, out: MetaOutcome, series: dict[str, pd.Series],
                 P: int) -> dict[str, Any]:
    """``bootstrap.json["meta"]``: calendar, windows, sleeves, and per meta cell of the trial simulator
    the best single sleeve on the meta's dates (highest Sharpe there), the Sharpe difference (meta -
    sleeve) with the paired test and CI of the baselines' comparison, and the diversification ratios."""
    cal = out.calendar
    trial_sim = cfg.trial_simulator
    sleeve_cell = {s.spec.name: s.cell_id for s in out.sleeves}
    ex_ante = out.ex_ante_ratios()
    cells = {}
    for cid, c in sorted(out.cells.items()):
        if c.simulator != trial_sim:
            continue
        a = c.engine.split(":")[1]
        m = series[cid]
        sharpes = {}
        for name, scid in sleeve_cell.items():
            s = series[scid].reindex(m.index).dropna()
            if len(s) > 2:
                sharpes[name] = float(compute_metrics(s.to_numpy(), P)["sharpe"])
        best = max(sorted(sharpes), key=lambda k: sharpes[k]) if sharpes else None
        drs = [x for x in ex_ante[a] if x is not None]
        row = {"allocator": a, "engine": c.engine, "sharpe": float(compute_metrics(m.to_numpy(), P)["sharpe"]),
               "sleeve_sharpes_on_meta_dates": sharpes, "best_sleeve": best,
               "diversification_ratio": {"realised": realised_diversification(out, cid, a),
                                         "ex_ante_mean": float(np.mean(drs)) if drs else None,
                                         "ex_ante_by_window": ex_ante[a]}}
        if best is not None:
            row["vs_best_sleeve"] = {"sleeve": best, "cell_id": sleeve_cell[best],
                                     **_paired(cfg, m, series[sleeve_cell[best]], P, f"{cid}|{best}")}
        cells[cid] = row
    return {"calendar": {"first": cal[0].isoformat(), "last": cal[-1].isoformat(), "n_days": int(len(cal)),
                         "periods_per_year": out.periods_per_year},
            "n_windows": len(out.windows), "first_test_day": cal[out.windows[0].test_start].isoformat(),
            "sleeves": {s.spec.name: {"cell_id": s.cell_id, "reused_cell": s.reused, "calendar": s.calendar,
                                      "engine": s.spec.engine, "profile": s.spec.profile.value,
                                      "source": s.spec.source} for s in out.sleeves},
            "config": cfg.meta.model_dump(mode="json"), "cells": cells,
            "trials": {"n_tournament": int(matrix["trial"].astype(bool).sum()),
                       "n_walked_forward_sleeves": len(out.sleeve_cells),
                       "n_meta_configurations": len(cfg.meta.allocators)}}
