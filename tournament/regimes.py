"""Volatility regimes of a run (issue 20): label every bar (``market.regimes``), write the labels and
each cell's per-regime figures (``audit.regimes``, from the cells' own returns), and summarise them
for ``bootstrap.json``. Every file is digested in the ledger as it is written (``record_file``).

The bootstrap seed of a cell's regime Sharpe CI derives from the base seed, ``"regime_sharpe_ci"``, the
cell id and the regime (``tournament.unit.derive_seed``), never from execution order.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from audit.regimes import REGIME_ORDER, ranking_consistency
from market.regimes import reference_prices, regime_frame
from tournament.config import TournamentConfig
from tournament.post_tasks import submit_regime_frames
from tournament.rundir import write_parquet

LABEL_COLUMNS = ["date", "vol", "cut_low", "cut_high", "regime"]


def label_frame(cfg: TournamentConfig, closes: pd.DataFrame, benchmark: str | None,
                periods_per_year: float) -> tuple[pd.DataFrame, str]:
    """``regime_labels.parquet``'s rows (one per bar of the panel) and the reference's description."""
    prices, source = reference_prices(closes, benchmark)
    rc = cfg.regimes
    fr = regime_frame(prices, window=rc.window, quantiles=tuple(rc.quantiles), min_history=rc.min_history,
                      periods_per_year=periods_per_year)
    out = fr.reset_index(drop=True)
    out.insert(0, "date", closes.index)
    return out[LABEL_COLUMNS], source


def submit_figures(cfg: TournamentConfig, returns: pd.DataFrame, labels: pd.DataFrame, periods_per_year: float,
                   session=None):
    """``regimes.parquet``'s rows: every cell x regime (``audit.regimes.regime_figures``), queued in
    batches of cells on ``session``'s workers (``tournament.post_tasks.submit_regime_frames``; ``None``:
    here, at ``result()``); an ``executors.Pending`` of the frame."""
    lab = pd.Series(labels["regime"].to_numpy(), index=pd.DatetimeIndex(labels["date"]), dtype="string")
    return submit_regime_frames(session, returns, lab, periods_per_year=periods_per_year, seed=cfg.seed,
                                n_boot=cfg.statistics.n_boot, alpha=cfg.statistics.alpha,
                                min_days=cfg.regimes.min_days)


def figures(cfg: TournamentConfig, returns: pd.DataFrame, labels: pd.DataFrame, periods_per_year: float,
            session=None) -> pd.DataFrame:
    """``submit_figures``, waited for."""
    return submit_figures(cfg, returns, labels, periods_per_year, session).result()


def submit_regimes(cfg: TournamentConfig, closes: pd.DataFrame, benchmark: str | None, periods_per_year: float,
                   returns: pd.DataFrame, session=None) -> tuple[pd.DataFrame, str, object]:
    """The labels, the reference's description and the figures' tasks (``submit_figures``) for
    ``write_regimes(..., queued=...)``: the figures run while the driver does other work (issue 23)."""
    labels, source = label_frame(cfg, closes, benchmark, periods_per_year)
    return labels, source, submit_figures(cfg, returns, labels, periods_per_year, session)


def write_regimes(run_dir: Path, cfg: TournamentConfig, closes: pd.DataFrame, benchmark: str | None,
                  periods_per_year: float, returns: pd.DataFrame, trial_plans: dict, record_file,
                  session=None, queued=None) -> dict:
    """Write ``regime_labels.parquet`` and ``regimes.parquet`` (each digested at once) and return the
    summary for ``bootstrap.json["regimes"]``. ``queued``: ``submit_regimes``' result (None: now)."""
    labels, source, fig = queued or submit_regimes(cfg, closes, benchmark, periods_per_year, returns, session)
    record_file(write_parquet(run_dir, "regime_labels.parquet", labels))
    fig = fig.result()
    record_file(write_parquet(run_dir, "regimes.parquet", fig))
    return summary(cfg, labels, source, fig, returns, trial_plans)


def summary(cfg: TournamentConfig, labels: pd.DataFrame, source: str, fig: pd.DataFrame, returns: pd.DataFrame,
            trial_plans: dict) -> dict:
    """Settings, the test span's days per regime, and per regime over the base setting's trial cells:
    how many have figures, their median Sharpe and the best; then whether the trial cells rank alike
    across regimes (Kendall's tau, ``audit.regimes.ranking_consistency``)."""
    rc = cfg.regimes
    test_dates = pd.DatetimeIndex(returns["date"].unique())
    lab = pd.Series(labels["regime"].to_numpy(), index=pd.DatetimeIndex(labels["date"]), dtype="string")
    on_test = lab.reindex(test_dates)
    base = cfg.settings()[0]
    trials = {cid: c for cid, (c, _) in trial_plans.items() if cfg.is_trial(c) and c.setting == base}
    tf = fig[fig["cell_id"].isin(trials)]
    per = {}
    for reg in REGIME_ORDER:
        g = tf[(tf["regime"] == reg) & tf["sharpe"].notna()]
        best = g.sort_values(["sharpe", "cell_id"], ascending=[False, True]).head(1).to_dict("records")
        per[reg] = {"test_days": int((on_test == reg).sum()), "trial_cells_with_figures": int(len(g)),
                    "median_sharpe": float(g["sharpe"].median()) if len(g) else None,
                    "best": ({"cell_id": best[0]["cell_id"], "engine": trials[best[0]["cell_id"]].engine,
                              "profile": trials[best[0]["cell_id"]].profile.value, "sharpe": best[0]["sharpe"]}
                             if best else None)}
    wide = tf.pivot_table(index="cell_id", columns="regime", values="sharpe", aggfunc="first")
    wide = wide[[r for r in REGIME_ORDER if r in wide.columns]]
    last = labels.dropna(subset=["cut_low"]).tail(1).to_dict("records")
    return {"reference": source, "window": rc.window, "quantiles": list(rc.quantiles),
            "min_history": rc.min_history, "min_days": rc.min_days,
            "unlabelled_test_days": int(on_test.isna().sum()), "test_days": int(len(test_dates)),
            "last_cut_points": ({"date": str(pd.Timestamp(last[0]["date"]).date()), "cut_low": last[0]["cut_low"],
                                 "cut_high": last[0]["cut_high"]} if last else None),
            "regimes": per,
            "ranking_consistency_base_trials": ranking_consistency(wide, cfg.statistics.alpha)
            if wide.shape[1] >= 2 else [],
            "ranking_consistency_sweeps": _sweep_consistency(cfg, fig, trial_plans),
            "files": ["regime_labels.parquet", "regimes.parquet"],
            "note": "figures per cell on the days of each regime (its own returns); labels from bars before "
                    "each day only"}


SWEEP_DIMS = ("step_size", "train_window", "feature_lookback")


def _sweep_consistency(cfg: TournamentConfig, fig: pd.DataFrame, trial_plans: dict) -> dict:
    """Per swept dimension (two or more values, the others at the base setting): Kendall's tau between
    the regimes over the sweep's trial cells (the report's ``consistency-<dim>``)."""
    base = cfg.settings()[0]
    out = {}
    for dim in SWEEP_DIMS:
        others = [d for d in SWEEP_DIMS if d != dim]
        cells = [cid for cid, (c, _) in trial_plans.items()
                 if cfg.is_trial(c) and all(getattr(c, d) == getattr(base, d) for d in others)]
        if len({getattr(trial_plans[cid][0], dim) for cid in cells}) < 2:
            continue
        wide = fig[fig["cell_id"].isin(cells)].pivot_table(index="cell_id", columns="regime", values="sharpe",
                                                           aggfunc="first")
        wide = wide[[r for r in REGIME_ORDER if r in wide.columns]]
        out[dim] = ranking_consistency(wide, cfg.statistics.alpha) if wide.shape[1] >= 2 else []
    return out
