"""Regime-aware sensitivity on the tournament page (issue 20).

- ``regime_split_html(rd, dim, sub, values)``: below each temporal sensitivity table (step size, train
  window, feature lookback), the same trial cells' Sharpe on the days of each regime, one column group
  per regime (``calm: feature_lookback=60`` ...), and whether the cells rank alike across regimes
  (Kendall's tau between the regime columns over every engine x profile x setting, Holm over the
  regime pairs, ``audit.regimes.ranking_consistency``), stated in words;
- ``regime_section(rd, img)``: how the days were labelled (reference, window, cut points; the
  reference's volatility and the cut points plotted), the base setting's trial cells per regime
  (Sharpe with CI, volatility, max drawdown, days), their ranking consistency, and each engine's
  Sharpe by feature lookback per regime (plot and table; mean over profiles) when lookbacks are swept.

Figures come from ``regimes.parquet`` (each cell's own returns on the regime's days; see
``audit.regimes``); labels from ``regime_labels.parquet``. Sharpe annualised (rf 0).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from audit.regimes import REGIME_ORDER, ranking_consistency
from reports.html import esc, fmt, pct, section, table
from reports.regime_data import load_figures
from reports.rundata import RunData
from reports.tournament_page import at_base, trials

COLOURS = {"calm": "#2e8b57", "turbulent": "#e0a020", "crisis": "#c0392b"}


def _alpha(rd: RunData) -> float:
    return float((rd.config.get("statistics") or {}).get("alpha", 0.05))


def _verdicts_html(results: list[dict], list_id: str, what: str) -> str:
    if not results:
        return f"<p class='muted' id='{esc(list_id)}'>ranking consistency not tested (fewer than two regimes)</p>"
    items = "".join(f"<li>{esc(r['verdict'])}</li>" for r in results)
    return (f"<p>Do the {esc(what)} rank alike across regimes? Kendall's tau-b between the regime columns "
            "(p-values Holm-adjusted over the regime pairs; cells share one market, so the p-value is "
            "descriptive rather than exact; on independent items its measured size is 0.04 at level 0.05 and its "
            "power 0.94 against a correlation of 0.6 with 30 items, tests/audit/test_regimes.py):</p>" f"<ul id='{esc(list_id)}'>{items}</ul>")


def regime_split_html(rd: RunData, dim: str, sub: pd.DataFrame, values: list) -> str:
    """The regime split of one sensitivity table (``sub``: the trial rows of the sweep of ``dim``)."""
    fig = load_figures(rd.run_dir)
    if fig.empty:
        return "<p class='muted'>no regimes.parquet in this run: no regime split</p>"
    f = fig.merge(sub[["cell_id", "engine", "profile", dim]], on="cell_id")
    if f.empty:
        return ""
    piv = f.pivot_table(index=["engine", "profile"], columns=["regime", dim], values="sharpe", aggfunc="first")
    days = f.groupby(["regime", dim])["n_days"].median()
    cols = [(r, v) for r in REGIME_ORDER for v in values]
    head = ["engine", "profile", *[f"{r}: {dim}={int(v)} ({int(days.get((r, v), 0))} d)" for r, v in cols]]
    rows = [[e, p, *[piv.loc[(e, p)].get((r, v), np.nan) if (r, v) in piv.columns else np.nan for r, v in cols]]
            for e, p in piv.index]
    wide = f.pivot_table(index=["engine", "profile", dim], columns="regime", values="sharpe", aggfunc="first")
    wide = wide[[r for r in REGIME_ORDER if r in wide.columns]]
    res = ranking_consistency(wide, _alpha(rd)) if wide.shape[1] >= 2 else []
    return (f"<p class='muted'>Regime split of the table above: the same trial cells' Sharpe on the days of each "
            f"regime (one column group per regime; days per regime in the header, median over the cells).</p>"
            + table(head, rows, text_cols=2, table_id=f"sensitivity-regimes-{dim}")
            + _verdicts_html(res, f"consistency-{dim}", f"engine x profile x {dim.replace('_', ' ')} cells"))


def _labels_plot(labels: pd.DataFrame, out: Path, test_span: tuple | None) -> Path:
    fig = Figure(figsize=(11, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    d = pd.DatetimeIndex(labels["date"])
    ax.plot(d, labels["vol"], color="#1d2b45", lw=0.8, label="reference volatility (annualised)")
    ax.plot(d, labels["cut_low"], color=COLOURS["turbulent"], lw=0.8, ls="--", label="calm / turbulent cut")
    ax.plot(d, labels["cut_high"], color=COLOURS["crisis"], lw=0.8, ls="--", label="turbulent / crisis cut")
    for reg in REGIME_ORDER:
        m = (labels["regime"] == reg).fillna(False).to_numpy(dtype=bool)
        ax.fill_between(d, 0, 1, where=m, transform=ax.get_xaxis_transform(), color=COLOURS[reg], alpha=0.12,
                        lw=0, label=reg)
    if test_span is not None:
        ax.axvline(test_span[0], color="k", lw=0.6)
        ax.axvline(test_span[1], color="k", lw=0.6)
    ax.set_title("Regime labels (shaded) from the reference's trailing volatility; test span between the "
                 "black lines", fontsize=10)
    ax.legend(fontsize=7, ncol=6, loc="upper left")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90, bbox_inches="tight")
    return out


def _lookback_plot(mean: pd.DataFrame, out: Path) -> Path:
    """``mean``: index (engine, feature_lookback), columns regimes: one panel per regime."""
    regs = [r for r in REGIME_ORDER if r in mean.columns]
    fig = Figure(figsize=(4.0 * max(len(regs), 1), 3.2))
    for i, reg in enumerate(regs):
        ax = fig.add_subplot(1, len(regs), i + 1)
        for eng, g in mean[reg].groupby(level=0):
            x = g.index.get_level_values(1)
            ax.plot(x, g.to_numpy(), marker="o", lw=1, label=str(eng))
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(f"{reg}", fontsize=10, color=COLOURS[reg])
        ax.set_xlabel("feature lookback (bars)")
        if i == 0:
            ax.set_ylabel("Sharpe (mean over profiles)")
            ax.legend(fontsize=7)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90, bbox_inches="tight")
    return out


def regime_section(rd: RunData, img: Path) -> str:
    labels_df = pd.read_parquet(rd.run_dir / "regime_labels.parquet") if (rd.run_dir / "regime_labels.parquet").is_file() \
        else pd.DataFrame()
    fig = load_figures(rd.run_dir)
    title = "Volatility regimes: every result split by calm, turbulent and crisis days"
    if labels_df.empty or fig.empty:
        return section("regimes", title, "<p class='muted' id='regimes-none'>no regime files in this run "
                                         "(written from schema 1.2 on)</p>")
    info = (rd.boot or {}).get("regimes") or {}
    body = []
    ret = rd.frames["returns.parquet"]
    span = (pd.Timestamp(ret["date"].min()), pd.Timestamp(ret["date"].max())) if not ret.empty else None
    per = info.get("regimes") or {}
    body.append("<p>Each day is labelled from the reference's annualised volatility over the "
                f"{esc(info.get('window'))} returns before it, against the {esc(info.get('quantiles'))} quantiles "
                f"of the earlier days' volatilities (at least {esc(info.get('min_history'))} of them): calm below the "
                "first, crisis at or above the second, turbulent between. No label reads the day itself or a later "
                f"one. Reference: {esc(info.get('reference'))}. Figures with fewer than {esc(info.get('min_days'))} "
                "days of a regime are left blank.</p>")
    body.append(table(["regime", "test days", "trial cells with figures (base setting)", "median Sharpe",
                       "best trial cell", "its Sharpe"],
                      [[r, (per.get(r) or {}).get("test_days"), (per.get(r) or {}).get("trial_cells_with_figures"),
                        (per.get(r) or {}).get("median_sharpe"),
                        " | ".join(str(x) for x in [((per.get(r) or {}).get("best") or {}).get("engine"),
                                                    ((per.get(r) or {}).get("best") or {}).get("profile")] if x),
                        ((per.get(r) or {}).get("best") or {}).get("sharpe")] for r in REGIME_ORDER],
                      text_cols=1, table_id="regimes-days-table"))
    _labels_plot(labels_df, img / "regime_labels.png", span)
    body.append('<img id="regime-labels-img" src="img/regime_labels.png" alt="regime labels">')

    t = at_base(rd, trials(rd))
    f = fig.merge(t[["cell_id", "engine", "profile"]], on="cell_id") if not t.empty else pd.DataFrame()
    if not f.empty:
        rows = []
        for (e, p), g in f.groupby(["engine", "profile"], sort=True):
            by = g.set_index("regime")
            row = [esc(e), esc(p)]
            for r in REGIME_ORDER:
                x = by.loc[r] if r in by.index else None
                row += [fmt(None if x is None else x["sharpe"]),
                        "n/a" if x is None or pd.isna(x["sharpe"]) else f"{fmt(x['sharpe_ci_low'])} .. {fmt(x['sharpe_ci_high'])}",
                        pct(None if x is None else x["annual_volatility"]), pct(None if x is None else x["max_drawdown"]),
                        fmt(None if x is None else x["n_days"])]
            rows.append(row)
        head = ["engine", "profile"] + [f"{r}: {c}" for r in REGIME_ORDER
                                        for c in ("Sharpe", "CI", "volatility %", "max DD %", "days")]
        body.append("<h3>Base setting: trial cells per regime</h3><p class='muted'>Sharpe with its stationary-"
                    "bootstrap CI, annualised volatility and max drawdown (of the equity compounded over that "
                    "regime's days only), on the days of each regime; one column group per regime.</p>"
                    + "<div style='overflow-x:auto;max-width:100%'>"
                    + table(head, rows, raw=True, text_cols=2, table_id="regimes-base-table") + "</div>")
        wide = f.pivot_table(index="cell_id", columns="regime", values="sharpe", aggfunc="first")
        wide = wide[[r for r in REGIME_ORDER if r in wide.columns]]
        res = ranking_consistency(wide, _alpha(rd)) if wide.shape[1] >= 2 else []
        body.append(_verdicts_html(res, "consistency-base", "base-setting trial cells (engine x profile)"))

    base = rd.base_setting()
    tt = trials(rd)
    lb = tt
    if base is not None and not tt.empty:
        lb = tt[(tt["step_size"] == base[0]) & (tt["train_window"] == base[1])]
    lbf = fig.merge(lb[["cell_id", "engine", "profile", "feature_lookback"]], on="cell_id") if not lb.empty \
        else pd.DataFrame()
    if not lbf.empty and lbf["feature_lookback"].nunique() >= 2:
        mean = lbf.pivot_table(index=["engine", "feature_lookback"], columns="regime", values="sharpe", aggfunc="mean")
        _lookback_plot(mean, img / "regime_lookback.png")
        cols = [r for r in REGIME_ORDER if r in mean.columns]
        body.append("<h3>Each engine's Sharpe by feature lookback, per regime (mean over profiles)</h3>"
                    '<img id="regime-lookback-img" src="img/regime_lookback.png" alt="Sharpe by lookback per regime">'
                    + table(["engine", "feature lookback", *cols],
                            [[e, int(v), *[mean.loc[(e, v)].get(c) for c in cols]] for e, v in mean.index],
                            text_cols=1, table_id="regime-lookback-table"))
    else:
        body.append("<p class='muted' id='regime-lookback-none'>No feature-lookback sweep in this run, so no plot of "
                    "Sharpe by lookback per regime (the <code>full</code> preset sweeps lookbacks 60, 120 and 250); "
                    "the base setting's split is above and each sensitivity table has its own split.</p>")
    return section("regimes", title, "".join(body))
