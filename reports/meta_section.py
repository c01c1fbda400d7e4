"""The report's meta-portfolio section (issue 17), read from the run folder only.

- the sleeves (market, calendar, reused cell or own walk-forward) and the meta cells' figures;
- sleeve weights over time, one stacked area per meta allocator (``meta/weights.parquet``: the weights
  decided at each cut-off, held from the window's fill);
- the meta equity against each sleeve's over the meta test span (``returns.parquet``, on the meta
  calendar, each rebased to 1 at the first meta test day);
- the diversification ratio per window (ex-ante, the covariance the allocator read) and realised;
- what the meta adds over the best single sleeve: the Sharpe difference with its paired CI
  (``bootstrap.json["meta"]``), also given in the summary (``meta_summary_pairs``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from reports.html import esc, fmt, kv_table, pct, section, table
from reports.rundata import RunData

DPI = 90


def _save(fig: Figure, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI, bbox_inches="tight")
    return out


def _weights(rd: RunData) -> pd.DataFrame:
    p = rd.run_dir / "meta" / "weights.parquet"
    return pd.read_parquet(p) if p.is_file() else pd.DataFrame()


def weights_area(w: pd.DataFrame, out: Path) -> Path:
    """One stacked area per allocator: sleeve weights from each window's fill to the next one's."""
    allocs = sorted(w["allocator"].unique())
    fig = Figure(figsize=(11, 2.4 * len(allocs)), layout="constrained")  # titles clear of the axis above
    for i, a in enumerate(allocs):
        ax = fig.add_subplot(len(allocs), 1, i + 1)
        piv = w[w["allocator"] == a].pivot_table(index="fill", columns="sleeve", values="weight", aggfunc="first")
        piv = piv.sort_index()
        ax.stackplot(piv.index, piv.T.to_numpy(), labels=list(piv.columns), step="post", alpha=0.85)
        ax.set_ylim(0, 1.0)
        ax.set_ylabel("weight")
        ax.set_title(f"meta {a}: sleeve weights (decided at each cut-off, held from its fill)", fontsize=9)
        ax.legend(fontsize=7, loc="upper left", ncol=len(piv.columns))
        loc = AutoDateLocator()
        ax.xaxis.set_major_locator(loc)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(loc))
    return _save(fig, out)


def equity_lines(series: dict[str, pd.Series], out: Path, title: str) -> Path:
    fig = Figure(figsize=(11, 4))
    ax = fig.add_subplot(1, 1, 1)
    for label, s in series.items():
        ax.plot(s.index, s.to_numpy(), lw=1.6 if label.startswith("meta") else 0.9, label=label)
    ax.axhline(1.0, color="#999", lw=0.6)
    ax.set_ylabel("equity (rebased)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=3)
    loc = AutoDateLocator()
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(loc))
    return _save(fig, out)


def dr_lines(by_alloc: dict[str, list], dates: list, out: Path) -> Path:
    fig = Figure(figsize=(11, 2.6))
    ax = fig.add_subplot(1, 1, 1)
    for a, vals in by_alloc.items():
        y = np.array([np.nan if v is None else float(v) for v in vals])
        ax.plot(dates[:len(y)], y, marker=".", lw=1, label=a)
    ax.axhline(1.0, color="#999", lw=0.6)
    ax.set_ylabel("diversification ratio")
    ax.set_title("ex-ante diversification ratio per meta window: sum w_i sigma_i / sigma_portfolio", fontsize=9)
    ax.legend(fontsize=7)
    return _save(fig, out)


def _meta_rows(rd: RunData) -> pd.DataFrame:
    m = rd.matrix
    if m.empty or "meta" not in m:
        return m.iloc[:0]
    return m[m["meta"].fillna("").astype(str) != ""]


def meta_section(rd: RunData, img: Path) -> str:
    info = (rd.boot or {}).get("meta")
    if not info:
        return ""
    rows = _meta_rows(rd)
    body = [f"<p>Sleeves combined walk-forward on their out-of-sample returns. Meta calendar: the union of the "
            f"sleeves' trading days, {esc(info['calendar']['first'][:10])} .. {esc(info['calendar']['last'][:10])} "
            f"({info['calendar']['n_days']} days, P = {info['calendar']['periods_per_year']}); a sleeve's closed "
            "days carry its stale mark (return 0, its move lands on its next trading day); the allocator reads "
            "the sleeves' returns carried onto their common trading days (compounded, never zero-filled). "
            f"{info['n_windows']} meta windows from {esc(info['first_test_day'][:10])}; a sleeve with fewer than "
            f"{info['config']['min_history']} OOS returns at a cut-off gets weight 0.</p>"]
    srows = [[n, s["source"], s["calendar"], f"{s['engine']} | {s['profile']}", s["cell_id"],
              "reused cell of this run" if s["reused_cell"] else "own walk-forward"]
             for n, s in info["sleeves"].items()]
    body.append(table(["sleeve", "source", "calendar", "engine | profile", "cell", "returns"], srows,
                      table_id="meta-sleeves-table", text_cols=6, raw=True))
    if len(rows):
        trs = [[r["meta"], r["cell_id"], r["simulator"], fmt(r.get("sharpe")),
                f"{fmt(r.get('sharpe_ci_low'))} .. {fmt(r.get('sharpe_ci_high'))}", pct(r.get("cagr")),
                pct(r.get("max_drawdown")), pct(r.get("annual_volatility")), fmt(r.get("dsr")), fmt(r.get("n_trials"))]
               for r in rows.sort_values(["meta", "simulator"]).to_dict("records")]
        body.append("<h3>Meta and sleeve cells (figures on the meta calendar)</h3>" + table(
            ["meta", "cell", "simulator", "Sharpe", "CI", "CAGR %", "max drawdown %", "volatility %", "DSR",
             "trials deflated"], trs, table_id="meta-cells-table", text_cols=3, raw=True))
    vs = []
    for cid, c in (info.get("cells") or {}).items():
        v = c.get("vs_best_sleeve") or {}
        dr = c.get("diversification_ratio") or {}
        vs.append([c["allocator"], cid, fmt(c.get("sharpe")), esc(c.get("best_sleeve")),
                   fmt((c.get("sleeve_sharpes_on_meta_dates") or {}).get(c.get("best_sleeve"))),
                   fmt(v.get("difference")), f"{fmt(v.get('ci_low'))} .. {fmt(v.get('ci_high'))}",
                   fmt(v.get("pvalue")), fmt(dr.get("realised")), fmt(dr.get("ex_ante_mean"))])
    if vs:
        body.append("<h3>What the meta adds over the best single sleeve (Sharpe difference meta - sleeve on the "
                    "meta's dates, paired test and CI as for the baselines; diversification ratio realised and "
                    "ex-ante mean)</h3>" + table(
                        ["allocator", "meta cell", "meta Sharpe", "best sleeve", "sleeve Sharpe", "difference", "CI",
                         "p-value", "DR realised", "DR ex-ante"], vs, table_id="meta-vs-sleeve-table", text_cols=2,
                        raw=True))
    w = _weights(rd)
    if len(w):
        weights_area(w, img / "meta_weights.png")
        body.append('<img id="meta-weights-img" src="img/meta_weights.png" alt="meta sleeve weights">')
        dates = sorted(w["fill"].unique())
        dr_lines({c["allocator"]: (c.get("diversification_ratio") or {}).get("ex_ante_by_window") or []
                  for c in (info.get("cells") or {}).values()}, dates, img / "meta_dr.png")
        body.append('<img id="meta-dr-img" src="img/meta_dr.png" alt="diversification ratio">')
    ret = rd.frames.get("returns.parquet")
    if ret is not None and len(ret) and len(rows):
        first = pd.Timestamp(info["first_test_day"])
        lines = {}
        names = {s["cell_id"]: f"sleeve {n}" for n, s in info["sleeves"].items()}
        for cid in list(names) + list((info.get("cells") or {})):  # meta drawn last (on top)
            g = ret[(ret["cell_id"] == cid) & (ret["date"] >= first)].sort_values("date")
            if len(g):
                label = names.get(cid) or f"meta {info['cells'][cid]['allocator']}"
                lines[label] = pd.Series(np.cumprod(1 + g["return"].to_numpy()), index=pd.DatetimeIndex(g["date"]))
        if lines:
            equity_lines(lines, img / "meta_equity.png", "meta equity against each sleeve (meta test span)")
            body.append('<img id="meta-equity-img" src="img/meta_equity.png" alt="meta equity vs sleeves">')
    return section("meta", "Meta-portfolio", "".join(body))


def meta_summary_pairs(rd: RunData) -> list[tuple[str, str]]:
    """Summary lines: per meta allocator (trial simulator), its Sharpe against the best single sleeve's
    with the difference's CI and p-value, and the diversification ratio."""
    info = (rd.boot or {}).get("meta") or {}
    out = []
    for cid, c in (info.get("cells") or {}).items():
        v = c.get("vs_best_sleeve") or {}
        dr = c.get("diversification_ratio") or {}
        lo, hi = v.get("ci_low"), v.get("ci_high")
        sig = lo is not None and hi is not None and (lo > 0 or hi < 0)
        verdict = ("significantly " + ("better" if (v.get("difference") or 0) > 0 else "worse")) if sig \
            else "no detectable difference"
        out.append((f"meta {c['allocator']} vs best single sleeve ({c.get('best_sleeve')})",
                    f"Sharpe {fmt(c.get('sharpe'))} vs {fmt((c.get('sleeve_sharpes_on_meta_dates') or {}).get(c.get('best_sleeve')))}: "
                    f"difference {fmt(v.get('difference'))} (CI {fmt(lo)} .. {fmt(hi)}, p {fmt(v.get('pvalue'))}; "
                    f"{verdict}); diversification ratio {fmt(dr.get('realised'))} realised, "
                    f"{fmt(dr.get('ex_ante_mean'))} ex-ante mean"))
    return out


__all__ = ["meta_section", "meta_summary_pairs", "kv_table"]
