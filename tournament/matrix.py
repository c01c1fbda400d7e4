"""The performance matrix (one row per cell) and the run-level statistics over the trials.

- Sharpe: annualised (P of the calendar), rf 0, with a studentised stationary-bootstrap CI (arch,
  automatic block length). One CI per distinct return series: the seed derives from the base seed and
  the series' content (SHA-256 of its float64 bytes), so two cells with the same returns get the same CI;
- PSR against 0 (per cell; never evidence for the best trial, which was selected); DSR in two readings:
  ``dsr_raw`` (raw trial count N with the variance of all trials' Sharpes) and ``dsr_clustered``
  (correlation clusters of the trials, ``n_trials_clustered``, with the variance of the cluster
  representatives' Sharpes); ``dsr`` is the headline, ``statistics.dsr_method`` (default ``raw``, the
  reading whose false-positive rate ``benchmarks/calibration.py`` finds at most nominal in every
  design; the clustered one exceeds it when one factor dominates). ``n_trials_effective`` is the
  participation ratio of the trials' correlation eigenvalues, kept for information: deflating by it
  with the cross-trial variance counted the common factor twice (issue 14);
- PBO by CSCV over the trials on their common dates, with its null mean and spread from block-bootstrap
  resamples of the demeaned trials; paired Sharpe tests (v4 vs v3.4, champion vs each challenger,
  every engine vs ``random``) matched on profile, step, train window and lookback: HAC p-values
  (Ledoit & Wolf 2008), those at or below alpha confirmed by LW's studentised circular block bootstrap
  with ``max(n_boot, ceil(2 m / alpha))`` draws (its floor stays below Holm's first threshold), with a
  stationary-bootstrap CI, Holm-corrected across all pairs, and per comparison the
  smallest difference detectable at this length (80% power at Holm's first threshold); Hansen's SPA,
  studentised, per profile at the base setting (benchmark: the ``random`` engine of that profile) and
  the Model Confidence Set over the base-setting trials (method ``max``, volatility-normalised loss).
- Zero-variance trials (e.g. liquidated at once): Sharpe 0 and a ``degenerate`` flag (audit.statistics
  rule), kept in the trial count.
- Degenerate selections (issue 15; e.g. an unfitted challenger recruiting by candidate id): a cell
  with such a window carries ``selection_degenerate_windows`` > 0 in the matrix, is not a trial
  (``trial`` False), and is left out of DSR, PBO, the paired verdicts, SPA and the MCS; the stats'
  ``excluded_trials`` lists those cells and says why.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from audit.checks import VOL_BANDS, band_distance
from audit.statistics import (cluster_trials, deflated_sharpe, effective_trials, holm_correction,
                              model_confidence_set, pbo_cscv, spa_test)
from audit.statistics._common import auto_block_length, stationary_indices
from audit.statistics.paired import boot_size_for
from audit.statistics.psr import trial_set
from tournament.config import TournamentConfig
from tournament.post_tasks import (Call, CellStatsJob, PairJob, call_task, submit_batches, submit_cell_stats,
                                   submit_paired_tests, submit_pbo_null)
from tournament.unit import derive_seed


def _band_text(profile) -> str:
    lo, hi = VOL_BANDS[profile]
    return f"{lo:.2f}" if lo == hi else f"{lo:.2f}-{hi:.2f}"


@dataclass
class QueuedMatrix:
    """The matrix's statistics queued on the run's workers (``submit_matrix``), gathered by
    ``finish_matrix``: the driver works in between (issue 23)."""

    cfg: TournamentConfig
    plans: dict
    P: int
    series: dict
    liquidated: dict
    n_bad: dict
    bad: dict
    excluded: list
    trials: list
    common: pd.DataFrame
    eff: object                       # effective_trials of the common frame (None: fewer than 2 trials)
    per_cell: object                  # executors.Pending: cell_stats of the plans, then of ``extra``
    extra_ids: list
    pbo: object                       # None or a Pending of [pbo_cscv(common)]
    pbo_null: tuple | None            # (reps, block length, Pending of the replicates' PBOs)
    pairs: tuple                      # (matched, confirm, Pending of the tests)
    spa_mcs: tuple                    # (SPA profiles, Pending of [spa..., mcs])


def performance_matrix(cfg: TournamentConfig, plans: dict, returns: pd.DataFrame, checks: list,
                       P: int, degenerate: dict | None = None, session=None) -> tuple[pd.DataFrame, dict]:
    """``degenerate``: (setting id, engine) -> windows whose selection is degenerate
    (``tournament.records.degenerate_windows``); those engines' cells are excluded from the trials.
    ``session``: the run's executor (``tournament.executors.Session``); the per-cell statistics, the
    paired tests, PBO and its null's replicates, SPA and the MCS run there as tasks
    (``tournament.post_tasks``); ``None``: in this process. The results do not depend on it."""
    return finish_matrix(submit_matrix(cfg, plans, returns, P, degenerate, session), checks)[:2]


def submit_matrix(cfg: TournamentConfig, plans: dict, returns: pd.DataFrame, P: int,
                  degenerate: dict | None = None, session=None,
                  extra: dict[str, pd.Series] | None = None, series: dict | None = None) -> QueuedMatrix:
    """Queue every statistic of ``performance_matrix`` that does not need the checks on ``session``
    (see there) and return at once. ``extra``: more series (cell id -> returns) whose per-cell figures
    (``compute_metrics``, ``sharpe_ci``; never trials) come back from ``finish_matrix`` (the baselines).
    ``series``: ``returns`` per cell, sorted by date (computed here when None)."""
    bad = {k: list(v) for k, v in (degenerate or {}).items() if v}
    n_bad = {cid: len(bad.get((c.setting.id, c.engine), [])) for cid, (c, _) in plans.items()}
    if series is None:
        series = {cid: g.sort_values("date").set_index("date")["return"] for cid, g in returns.groupby("cell_id")}
    liquidated = {cid: bool(g["liquidated"].any()) for cid, g in returns.groupby("cell_id")}
    excluded = sorted(cid for cid, (c, _) in plans.items() if cfg.is_trial(c) and n_bad[cid])
    trials = [cid for cid, (c, _) in plans.items() if cfg.is_trial(c) and not n_bad[cid]]
    common = _common_frame(series, trials)
    st = cfg.statistics
    common_arr = common.to_numpy() if common.shape[1] > 1 else None
    jobs = []
    for cid in plans:
        x = series[cid].to_numpy()
        jobs.append(CellStatsJob(cid, x, series_seed(cfg.seed, "sharpe_ci", x), cid in trials))
    for cid, r in (extra or {}).items():
        x = r.to_numpy()
        jobs.append(CellStatsJob(cid, x, series_seed(cfg.seed, "sharpe_ci", x), False))
    trials_set = trial_set(common_arr, st.cluster_threshold) if common_arr is not None else None  # once, for every DSR
    per_cell = submit_cell_stats(session, jobs, periods_per_year=P, n_boot=st.n_boot, alpha=st.alpha,
                                 trials=trials_set, dsr_method=st.dsr_method)
    pbo = pbo_n = None
    if common.shape[1] >= 2 and common.shape[0] >= st.pbo_blocks * 2:
        pbo = submit_batches(session, call_task, [Call(pbo_cscv, (common,), {"n_splits": st.pbo_blocks})])
        pbo_n = pbo_null(cfg, common, session, queued=True)
    pairs = _paired_jobs(cfg, plans, series, P, set(trials), session)
    spa_mcs = _spa_mcs_jobs(cfg, plans, series, set(trials), session)
    eff = effective_trials(common.to_numpy()) if common.shape[1] >= 2 else None
    return QueuedMatrix(cfg, plans, P, series, liquidated, n_bad, bad, excluded, trials, common, eff, per_cell,
                        list(extra or {}), pbo, pbo_n, pairs, spa_mcs)


def finish_matrix(q: QueuedMatrix, checks: list) -> tuple[pd.DataFrame, dict, dict]:
    """``performance_matrix``'s matrix and stats from the queued tasks (waits for them) and the run's
    checks; third, the ``extra`` series' per-cell figures by cell id (``{"metrics", "ci", ...}``)."""
    cfg, plans = q.cfg, q.plans
    drift = {c.cell_id: c.details.get("flag") == "DRIFT" for c in checks if c.name == "volatility_band"}
    keep_trials = set(q.trials)
    n_eff = q.eff.n_effective if q.eff is not None else np.nan
    done = q.per_cell.result()
    per_cell, extra = done[:len(plans)], dict(zip(q.extra_ids, done[len(plans):]))
    rows = []
    for (cid, (cell, plan)), res in zip(plans.items(), per_cell):
        m, ci, psr, dsr = res["metrics"], res["ci"], res["psr"], res["dsr"]
        band = VOL_BANDS[cell.profile]
        rows.append({"cell_id": cid, **cell.dims(), "trial": cid in keep_trials,
                     "sharpe": ci.sharpe, "sharpe_ci_low": ci.ci_low, "sharpe_ci_high": ci.ci_high,
                     "cagr": m["cagr"], "max_drawdown": m["max_drawdown"], "annual_volatility": m["annual_volatility"],
                     "vol_band": _band_text(cell.profile),
                     "band_distance": band_distance(m["annual_volatility"], band),
                     "psr": psr.psr, "dsr": dsr.dsr if dsr else np.nan,
                     "dsr_raw": dsr.dsr_raw if dsr else np.nan,
                     "dsr_clustered": dsr.dsr_clustered if dsr else np.nan,
                     "dsr_method": dsr.method if dsr else "",
                     "n_trials": dsr.n_trials_raw if dsr else np.nan,
                     "n_trials_clustered": dsr.n_trials_clustered if dsr else np.nan,
                     "n_trials_effective": n_eff if dsr else np.nan,
                     "liquidated": q.liquidated[cid], "drift": drift.get(cid, False),
                     "n_windows": len(plan.windows), "degenerate": ci.degenerate,
                     "selection_degenerate_windows": q.n_bad[cid]})
    matrix = pd.DataFrame(rows)
    common = q.common
    stats = {"n_trials": len(q.trials), "common_dates": int(common.shape[0])}
    if q.excluded:
        stats["excluded_trials"] = {
            "n": len(q.excluded), "cells": q.excluded,
            "windows": {f"{sid}|{e}": w for (sid, e), w in q.bad.items()},
            "reason": "degenerate selection (the engine could not decide in these windows, e.g. an "
                      "unfitted challenger recruiting by candidate id): left out of the trial count, "
                      "DSR, PBO, the paired verdicts, SPA and the MCS"}
    if common.shape[1] >= 2:
        stats["effective_trials"] = q.eff.to_dict()
        stats["dsr"] = dsr_summary(cfg, matrix, common)
        if q.pbo is not None:
            pbo = q.pbo.result()[0]
            stats["pbo"] = {k: v for k, v in pbo.to_dict().items()}
            stats["pbo"]["lambdas"] = [float(x) for x in pbo.lambdas]
            reps, bl, vals = q.pbo_null
            stats["pbo"]["null"] = _pbo_null_dict(reps, bl, vals.result()) if vals is not None else {}
    stats["paired_tests"] = _paired_finish(cfg, *q.pairs)
    stats["spa"], stats["mcs"] = _spa_mcs_finish(*q.spa_mcs)
    return matrix, stats, extra


def _common_frame(series: dict, cids: list[str]) -> pd.DataFrame:
    if not cids:
        return pd.DataFrame()
    df = pd.DataFrame({c: series[c] for c in cids}).dropna(how="any")
    return df


def _paired(cfg: TournamentConfig, plans: dict, series: dict, P: int, trials: set | None = None,
            session=None) -> dict:
    """Paired Sharpe-difference tests between engines on trials matched on everything else."""
    return _paired_finish(cfg, *_paired_jobs(cfg, plans, series, P, trials, session))


def _paired_jobs(cfg: TournamentConfig, plans: dict, series: dict, P: int, trials: set | None = None,
                 session=None) -> tuple:
    """``_paired``'s matched pairs, the confirming bootstrap's size and the tests queued on ``session``."""
    idx = {}
    for cid, (c, _) in plans.items():
        if cfg.is_trial(c) and (trials is None or cid in trials):
            idx[(c.engine, c.profile.value, c.step_size, c.train_window, c.feature_lookback)] = cid
    engines = list(cfg.engines)
    pairs = []
    if "v4" in engines and "v3.4" in engines:
        pairs.append(("v4", "v3.4", "v4 vs v3.4"))
    for e in engines:
        if e.startswith("v4:") and "v4" in engines:
            pairs.append(("v4", e, f"champion vs {e}"))
    if "random" in engines:
        for e in engines:
            if e != "random":
                pairs.append((e, "random", f"{e} vs random"))
    matched = []
    for a, b, label in pairs:
        for key, cid_a in idx.items():
            if key[0] != a:
                continue
            cid_b = idx.get((b,) + key[1:])
            if cid_b is not None:
                matched.append((a, b, label, key, cid_a, cid_b))
    # the confirming bootstrap's size from the number of tests: its floor stays below alpha/m
    confirm = boot_size_for(len(matched), cfg.statistics.alpha, floor=cfg.statistics.n_boot) if matched else None
    jobs = []
    for a, b, label, key, cid_a, cid_b in matched:
        ab = pd.concat([series[cid_a], series[cid_b]], axis=1, join="inner").dropna()
        jobs.append(PairJob(ab.iloc[:, 0].to_numpy(), ab.iloc[:, 1].to_numpy(),
                            derive_seed(cfg.seed, "paired", cid_a, cid_b)))
    done = submit_paired_tests(session, jobs, periods_per_year=P, n_boot=cfg.statistics.n_boot,
                               alpha=cfg.statistics.alpha, confirm_n_boot=confirm)
    return matched, confirm, done


def _paired_finish(cfg: TournamentConfig, matched: list, confirm, queued) -> dict:
    done = queued.result()
    tests = []
    for (a, b, label, key, cid_a, cid_b), t in zip(matched, done):
        tests.append({"comparison": label, "a": a, "b": b, "profile": key[1], "step_size": key[2],
                      "train_window": key[3], "feature_lookback": key[4], "cell_a": cid_a,
                      "cell_b": cid_b, **t})
    if tests:
        pv = pd.Series([t["pvalue"] for t in tests], index=range(len(tests)))
        holm = holm_correction(pv, alpha=cfg.statistics.alpha)
        for i, t in enumerate(tests):
            t["pvalue_holm"] = float(holm.adjusted.iloc[i])
            t["reject_holm"] = bool(holm.reject.iloc[i])
    verdicts = {}
    for t in tests:
        v = verdicts.setdefault(t["comparison"], {"n": 0, "a_better_significant": 0, "b_better_significant": 0,
                                                  "mean_difference": 0.0})
        v["n"] += 1
        v["mean_difference"] += t["difference"]
        if t["reject_holm"]:
            v["a_better_significant" if t["difference"] > 0 else "b_better_significant"] += 1
    for v in verdicts.values():
        v["mean_difference"] /= max(v["n"], 1)
    m = len(tests)
    if m:
        z_holm = float(norm.isf(cfg.statistics.alpha / (2.0 * m)))
        for name, v in verdicts.items():
            ses = [t["se"] for t in tests if t["comparison"] == name and t["se"] > 0]
            v["median_se"] = float(np.median(ses)) if ses else None
            # 80% power at Holm's first (strictest) threshold alpha/m, two-sided
            v["detectable_difference"] = (z_holm + float(norm.isf(0.2))) * v["median_se"] if ses else None
            v["min_pvalue"] = float(min(t["pvalue"] for t in tests if t["comparison"] == name))
            # HAC p-values have no floor; the confirming bootstrap's is 1/(confirm + 1) < alpha/m
            v["resolvable"] = 1.0 / (confirm + 1.0) < cfg.statistics.alpha / m
    return {"tests": tests, "verdicts": verdicts, "correction": "holm",
            "pvalue_method": "hac_delta, confirmed by the studentised circular block bootstrap where <= alpha "
                             "(p = max of the two)",
            "n_pairs": m, "holm_first_threshold": cfg.statistics.alpha / m if m else None,
            "confirm_n_boot": confirm, "min_achievable_pvalue": 1.0 / (confirm + 1.0) if m else None}


def _spa_mcs(cfg: TournamentConfig, plans: dict, series: dict, trials: set | None = None) -> tuple[dict, dict]:
    return _spa_mcs_finish(*_spa_mcs_jobs(cfg, plans, series, trials))


def _spa_mcs_jobs(cfg: TournamentConfig, plans: dict, series: dict, trials: set | None = None,
                  session=None) -> tuple[list, bool, object]:
    """Hansen's SPA per profile and the MCS (see the module docstring) as ``call_task`` tasks on
    ``session`` (None: here, at ``result()``): the profiles tested, whether the MCS runs, the tasks."""
    base = cfg.settings()[0]
    base_trials = {cid: c for cid, (c, _) in plans.items() if cfg.is_trial(c) and c.setting == base
                   and (trials is None or cid in trials)}
    calls, profiles = [], []
    if "random" in cfg.engines:
        for profile in cfg.profiles:
            bench = [cid for cid, c in base_trials.items() if c.engine == "random" and c.profile == profile]
            models = {c.engine: cid for cid, c in base_trials.items() if c.engine != "random" and c.profile == profile}
            if not bench or not models:
                continue
            df = pd.DataFrame({e: series[cid] for e, cid in models.items()})
            df["__bench"] = series[bench[0]]
            df = df.dropna()
            calls.append(Call(spa_test, (df.pop("__bench").to_numpy(), df),
                              {"seed": derive_seed(cfg.seed, "spa", profile.value), "n_boot": cfg.statistics.n_boot}))
            profiles.append(profile.value)
    has_mcs = len(base_trials) >= 2
    if has_mcs:
        labels = {cid: f"{c.engine}|{c.profile.value}" for cid, c in base_trials.items()}
        df = pd.DataFrame({labels[cid]: series[cid] for cid in base_trials}).dropna()
        calls.append(Call(model_confidence_set, (df,), {"seed": derive_seed(cfg.seed, "mcs"),
                                                        "n_boot": cfg.statistics.n_boot, "loss": "sharpe"}))
    return profiles, has_mcs, submit_batches(session, call_task, calls)


def _spa_mcs_finish(profiles: list, has_mcs: bool, queued) -> tuple[dict, dict]:
    out = [r.to_dict() for r in queued.result()]
    return dict(zip(profiles, out)), (out[-1] if has_mcs else {})


def series_seed(base: int, purpose: str, values: np.ndarray) -> int:
    """A bootstrap seed from the base seed and the series' content (SHA-256 of its float64 bytes):
    the same return series gets the same draws, hence the same CI, in every cell."""
    digest = hashlib.sha256(np.ascontiguousarray(values, dtype=np.float64).tobytes()).hexdigest()[:16]
    return derive_seed(base, purpose, digest)


def dsr_summary(cfg: TournamentConfig, matrix: pd.DataFrame, common: pd.DataFrame) -> dict:
    """bootstrap.json's ``dsr`` block: both readings' counts and variances and the best trial's figures."""
    t = matrix[matrix["trial"] & matrix["dsr"].notna()]
    if t.empty:
        return {}
    best = t.sort_values("sharpe", ascending=False).iloc[0]
    res = deflated_sharpe(common[best["cell_id"]].to_numpy(), common.to_numpy(),
                          method=cfg.statistics.dsr_method, cluster_threshold=cfg.statistics.cluster_threshold)
    cl = cluster_trials(common.to_numpy(), threshold=cfg.statistics.cluster_threshold)
    return {"method": res.method, "headline": res.method,
            "calibration": "benchmarks/calibration.py: false-positive rate of DSR > 0.95 at most nominal for "
                           "the raw reading in every design; the clustered reading exceeds it under one dominant "
                           "factor",
            "n_trials_raw": res.n_trials_raw, "n_trials_clustered": res.n_trials_clustered,
            "cluster_threshold": cfg.statistics.cluster_threshold,
            "clusters": {str(c): int(lab) for c, lab in zip(common.columns, cl.labels)},
            "sr_variance_per_period": float(deflated_sharpe(common[best["cell_id"]].to_numpy(),
                                                            common.to_numpy()).sr_variance),
            "sr_variance_clustered_per_period": res.sr_variance_clustered,
            "sr0_raw_per_period": res.sr0_all_trials, "sr0_clustered_per_period": res.sr0_clustered,
            "best_trial": {"cell_id": best["cell_id"], "engine": best["engine"], "profile": best["profile"],
                           "sharpe": float(best["sharpe"]), "sharpe_ci_low": float(best["sharpe_ci_low"]),
                           "sharpe_ci_high": float(best["sharpe_ci_high"]), "dsr": res.dsr,
                           "dsr_raw": res.dsr_raw, "dsr_clustered": res.dsr_clustered,
                           "significant": bool(res.dsr > 0.95)}}


def pbo_null(cfg: TournamentConfig, common: pd.DataFrame, session=None, queued: bool = False):
    """PBO's null mean and spread: CSCV on ``pbo_null_reps`` stationary-bootstrap resamples (rows,
    common to all trials, so their correlation is kept) of the trials' demeaned returns (no skill).
    One run's PBO is read against this spread, not against 0.5 alone. ``queued``: return
    ``(reps, block length, Pending of the replicates' PBOs)`` at once instead (``finish_matrix``)."""
    reps = cfg.statistics.pbo_null_reps
    if reps < 2:
        return (reps, None, None) if queued else {}
    x = common.to_numpy()
    x = x - x.mean(axis=0)
    bl = auto_block_length(x, how="median")
    idx = stationary_indices(x.shape[0], bl, reps, derive_seed(cfg.seed, "pbo_null"))
    vals = submit_pbo_null(session, x, idx, cfg.statistics.pbo_blocks)  # CSCV of replicate batches as tasks
    return (reps, bl, vals) if queued else _pbo_null_dict(reps, bl, vals.result())


def _pbo_null_dict(reps: int, bl, vals: np.ndarray) -> dict:
    return {"mean": float(vals.mean()), "sd": float(vals.std(ddof=1)), "reps": reps, "block_length": bl}
