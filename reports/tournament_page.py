"""Sections of the tournament page (``report/index.html``): inputs and ledger, the performance
matrix and its heatmap, equity curves and drawdowns, volatility bands, the allocations relaxed or
replaced per profile (issue 19), and the window index.

The statistics sections (PBO, DSR, verdicts, sensitivity, verification axes, HTR stages, checks)
are in ``reports.stats_sections``. Plots go to ``report/img/``; every plotted number is also in a
table. Trial cells are the matrix rows with ``trial`` true (native backend, vectorbt simulator);
equity curves show the trial cells of the base setting, one figure per profile.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from contracts.enums import RecordType
from reports import plots
from reports.html import banner, esc, fmt, kv_table, pct, section, table
from reports.rundata import RunData, equity_drawdown
from reports.regime_data import dominant, mix_text
from reports.units import UnitBundle, page_path

DIMS = ["engine", "profile", "backend", "simulator", "step_size", "train_window", "feature_lookback"]


def trials(rd: RunData) -> pd.DataFrame:
    """Trial rows of the performance matrix (``trial`` column, else native x vectorbt)."""
    m = rd.matrix
    if m.empty:
        return m
    if "trial" in m:
        return m[m["trial"].astype(str).str.lower().isin(["true", "1"])]
    return m[(m["backend"] == "native") & (m["simulator"] == "vectorbt")]


def at_base(rd: RunData, m: pd.DataFrame) -> pd.DataFrame:
    base = rd.base_setting()
    if base is None or m.empty:
        return m
    s, t, lb = base
    return m[(m["step_size"] == s) & (m["train_window"] == t) & (m["feature_lookback"] == lb)]


def cell_labels(rd: RunData) -> dict[str, str]:
    """Readable cell labels ``engine|profile|backend|simulator|s<step>_t<train>_l<lookback>``."""
    src = rd.frames["cells.parquet"] if not rd.frames["cells.parquet"].empty else rd.matrix
    if src.empty or "cell_id" not in src:
        return {}
    return {r["cell_id"]: f"{r['engine']}|{r['profile']}|{r['backend']}|{r['simulator']}|"
                          f"s{r['step_size']}_t{r['train_window']}_l{r['feature_lookback']}"
            for r in src.to_dict("records")}


def inputs_section(rd: RunData) -> str:
    """Run inputs (git commit, data digests, point-in-time) and the ledger's verification."""
    inp = rd.run_start.get("inputs", {})
    out = []
    pit = rd.point_in_time
    if pit is False:
        msg = next((w.get("message") for w in rd.of(RecordType.WARNING)
                    if w.get("code") == "single_undated_export"), None)
        out.append(banner("Candidates are NOT point-in-time: one undated export was used for every window "
                          "(survivorship and look-ahead risk). " + (msg or ""), "bad", banner_id="pit-banner"))
    elif pit is True:
        out.append(banner("Candidates are point-in-time (dated snapshots as of each cut-off).", "good",
                          banner_id="pit-banner"))
    else:
        out.append(banner("Point-in-time status of the candidates is not recorded.", "warn", banner_id="pit-banner"))
    lv = rd.ledger
    has_end = bool(rd.of(RecordType.RUN_END))
    if lv.ok:
        text = f"Ledger verified: {lv.message}" + ("" if has_end else
                                                   " (run_end not yet appended: the report is rendered before it)")
        text += (f"; head when rendered: seq {lv.head_seq} {lv.head_hash}. The chain alone proves internal "
                 "consistency; `tournament audit verify RUN --expect-head HASH` with the head printed at the "
                 "end of the run proves the ledger was not cut, extended or rewritten since. This report is "
                 "derived from the verified files and is not itself digested.")
        out.append(banner(text, "good", banner_id="ledger-status"))
    else:
        out.append(banner(f"Ledger verification FAILED at seq {lv.first_bad_seq}: {lv.message}", "bad",
                          banner_id="ledger-status"))
    for w in lv.warnings:
        out.append(banner(w, "warn"))
    snap = inp.get("snapshot_sha256")
    pairs = [("run id", rd.run_id), ("git commit", inp.get("git_commit")), ("data source", inp.get("source")),
             ("panel sha256", inp.get("panel_sha256")),
             ("snapshot sha256", json.dumps(snap, sort_keys=True) if isinstance(snap, dict) else snap),
             ("point in time", pit), ("symbols", inp.get("n_symbols")), ("bars", inp.get("n_bars")),
             ("first date", inp.get("first_date")), ("last date", inp.get("last_date")),
             ("calendar", inp.get("calendar")), ("periods per year", inp.get("periods_per_year")),
             ("ledger records", lv.n_records)]
    out.append(kv_table(pairs, table_id="inputs-table"))
    versions = rd.run_start.get("versions") or {}
    if versions:
        out.append("<details><summary>Library versions</summary>" + table(
            ["library", "version"], sorted(versions.items()), table_id="versions-table", text_cols=2) + "</details>")
    events = rd.run_start.get("events")
    if events:
        items = sorted(events.items()) if isinstance(events, dict) else enumerate(events if isinstance(events, list)
                                                                                   else [events])
        out.append("<h3>Synthetic market events (planted in the data)</h3>" + table(
            ["event", "details"], [[esc(k), esc(json.dumps(v, default=str))] for k, v in items], raw=True,
            table_id="events-table", text_cols=2))
    if rd.missing:
        out.append(banner("Missing from the run directory: " + ", ".join(rd.missing), "warn",
                          banner_id="missing-files"))
    return section("inputs", "Run inputs and ledger", "".join(out))


MATRIX_COLS = ["cell_id", *DIMS, "trial", "sharpe", "sharpe_ci_low", "sharpe_ci_high", "cagr", "max_drawdown",
               "annual_volatility", "vol_band", "band_distance", "psr", "dsr", "dsr_raw", "dsr_clustered",
               "n_trials", "n_trials_clustered",
               "liquidated", "drift", "degenerate", "n_windows"]


def matrix_section(rd: RunData, img: Path) -> str:
    """Heatmap of trial Sharpe (engine x profile, one panel per step size at the base train window and
    lookback) and the full matrix with Sharpe CIs."""
    m = rd.matrix
    if m.empty:
        return section("matrix", "Performance matrix", "<p class='muted'>performance_matrix.csv missing</p>")
    t = trials(rd)
    base = rd.base_setting()
    panels = {}
    if not t.empty and base is not None:
        sub = t[(t["train_window"] == base[1]) & (t["feature_lookback"] == base[2])]
        for s in sorted(sub["step_size"].unique()):
            piv = sub[sub["step_size"] == s].pivot_table(index="engine", columns="profile", values="sharpe",
                                                         aggfunc="first")
            panels[f"step {int(s)}"] = piv
    body = []
    if panels:
        plots.heatmap(panels, img / "heatmap.png", title="trial Sharpe")
        body.append('<img id="heatmap-img" src="img/heatmap.png" alt="Sharpe heatmap">')
    body.append("<p class='muted'>Sharpe annualised (rf 0) with its stationary-bootstrap CI; CAGR, max drawdown "
                "(negative), annualised volatility and band distance in %. Trial cells first (best Sharpe first); "
                "the baselines and the verification axes (the other optimiser backend and simulator re-running "
                "the base setting) below. Click a header to sort.</p>")
    is_bl = m["baseline"].astype(str).str.lower().isin(["true", "1"]) if "baseline" in m else pd.Series(False, index=m.index)
    tr = m.loc[m["cell_id"].isin(set(t["cell_id"]))].sort_values(["sharpe", "cell_id"], ascending=[False, True],
                                                                  na_position="last")
    is_meta = m["meta"].fillna("").astype(str) != "" if "meta" in m else pd.Series(False, index=m.index)
    verif = m.loc[~m["cell_id"].isin(set(t["cell_id"])) & ~is_bl & ~is_meta]  # meta rows: the meta section
    drop_for_trials = {"trial", "backend", "simulator", "baseline"}
    body.append(_matrix_table(tr, [c for c in MATRIX_COLS if c in m.columns and c not in drop_for_trials],
                              "matrix-table"))
    if is_bl.any():
        body.append("<h3>Baselines (never trials)</h3>" + _matrix_table(
            m.loc[is_bl], [c for c in MATRIX_COLS if c in m.columns and c not in {"trial", "baseline"}],
            "matrix-baselines-table"))
    if len(verif):
        body.append(f"<details><summary>Verification axes: {len(verif)} cells (riskfolio backend, reference "
                    "simulator)</summary>" + _matrix_table(
                        verif, [c for c in MATRIX_COLS if c in m.columns and c != "baseline"],
                        "matrix-verification-table") + "</details>")
    return section("matrix", "Performance matrix", "".join(body))


_PCT_COLS = ("cagr", "max_drawdown", "annual_volatility", "band_distance")


def _matrix_table(m: pd.DataFrame, cols: list[str], table_id: str) -> str:
    """Rows of the matrix as a table that scrolls inside the page rather than widening it."""
    rows = [[pct(r[c]) if c in _PCT_COLS else fmt(r[c]) for c in cols] for r in m[cols].to_dict("records")]
    head = [c.replace("_", " ") + (" %" if c in _PCT_COLS else "") for c in cols]
    n_text = sum(1 for c in cols if c in ("cell_id", *DIMS))
    return ("<div style='overflow-x:auto;max-width:100%'>"
            + table(head, rows, raw=True, text_cols=max(1, n_text), table_id=table_id) + "</div>")


def equity_section(rd: RunData, img: Path) -> str:
    """Equity (log) and drawdowns of the base setting's trial cells, one figure per profile;
    liquidation dates are marked and tabulated."""
    ret = rd.frames["returns.parquet"]
    t = at_base(rd, trials(rd))
    if ret.empty or t.empty:
        return section("equity", "Equity curves and drawdowns", "<p class='muted'>no returns</p>")
    bl = _baseline_rows(rd)
    wanted = set(t["cell_id"]) | set(bl["cell_id"])
    by_cell = {cid: g.sort_values("date") for cid, g in ret[ret["cell_id"].isin(wanted)].groupby("cell_id")}
    body, liq_rows, eq_rows = [], [], []
    for profile, grp in t.groupby("profile", sort=True):
        series, liq = {}, {}
        for r in bl.to_dict("records"):  # the references, drawn on every profile's figure
            g = by_cell.get(r["cell_id"])
            if g is not None:
                series[r["engine"]] = equity_drawdown(pd.Series(g["return"].to_numpy(dtype=float),
                                                                index=pd.DatetimeIndex(g["date"])))
        for r in grp.sort_values("engine").to_dict("records"):
            g = by_cell.get(r["cell_id"])
            if g is None:
                continue
            s = pd.Series(g["return"].to_numpy(dtype=float), index=pd.DatetimeIndex(g["date"]))
            series[r["engine"]] = equity_drawdown(s)
            eq, dd = series[r["engine"]]
            eq_rows.append([r["cell_id"], r["engine"], profile, float(eq.iloc[-1]) if len(eq) else None,
                            pct(float(dd.min()) if len(dd) else None)])
            hit = g.loc[g["liquidated"].astype(bool), "date"]
            if len(hit):
                liq[r["engine"]] = pd.Timestamp(hit.iloc[0])
                liq_rows.append([r["cell_id"], r["engine"], profile, pd.Timestamp(hit.iloc[0]).strftime("%Y-%m-%d")])
        if series:
            name = f"equity_{profile}.png"
            plots.equity_and_drawdown(series, liq, img / name, title=f"{profile}: equity and drawdown (trial cells)")
            body.append(f'<h3>{esc(profile)}</h3><img class="equity-img" src="img/{esc(name)}" alt="equity {esc(profile)}">')
    body.append("<h3>Final equity and max drawdown (initial capital 1; drawdown from the high-water mark "
                "including the initial capital)</h3>" + table(["cell", "engine", "profile", "final equity",
                                                              "max drawdown %"], eq_rows, text_cols=3,
                                                             table_id="equity-table"))
    body.append("<h3>Liquidations</h3>" + table(["cell", "engine", "profile", "date"], liq_rows,
                                                 table_id="liquidations-table", text_cols=4))
    return section("equity", "Equity curves and drawdowns (base setting, trial cells; bh: the buy-and-hold "
                             "baselines)", "".join(body))


def _baseline_rows(rd: RunData) -> pd.DataFrame:
    """The baseline cells of the trial simulator (``baseline`` column of the matrix)."""
    m = rd.matrix
    if m.empty or "baseline" not in m:
        return pd.DataFrame(columns=["cell_id", "engine"])
    b = m[m["baseline"].astype(str).str.lower().isin(["true", "1"])]
    sims = set(trials(rd)["simulator"]) if not trials(rd).empty else {"vectorbt"}
    return b[b["simulator"].isin(sims)]


def baselines_section(rd: RunData) -> str:
    """The result against what a user could have had without the tournament: the benchmark's
    buy-and-hold and an equal-weight buy-and-hold of each window's eligible pool (same costs)."""
    info = (rd.boot or {}).get("baselines") or {}
    bl = _baseline_rows(rd)
    if bl.empty:
        return section("baselines", "Against the baselines", "<p class='muted'>no baseline cells in this run</p>")
    rows = [[r["engine"], r["cell_id"], fmt(r.get("sharpe")), f"{fmt(r.get('sharpe_ci_low'))} .. "
             f"{fmt(r.get('sharpe_ci_high'))}", pct(r.get("cagr")), pct(r.get("max_drawdown")),
             pct(r.get("annual_volatility"))] for r in bl.to_dict("records")]
    body = [f"<p>bh:benchmark holds {esc(info.get('benchmark'))}; bh:pool holds each window's eligible pool in "
            f"equal weights ({esc(info.get('pool_rule'))}), both with the run's costs. They are simulated and audited "
            "like any cell, never counted as trials.</p>",
            table(["baseline", "cell", "Sharpe", "CI", "CAGR %", "max drawdown %", "volatility %"], rows,
                  table_id="baselines-table", text_cols=2, raw=True)]
    vs = info.get("vs_best_trial") or {}
    best = vs.get("best_trial")
    lines = []
    for name in ("bh:benchmark", "bh:pool"):
        v = vs.get(name)
        if not best or not v:
            continue
        diff = v.get("difference")
        lo, hi, p = v.get("ci_low"), v.get("ci_high"), v.get("pvalue")
        sig = (lo is not None and hi is not None and (lo > 0 or hi < 0))
        verdict = ("significantly " + ("better" if (diff or 0) > 0 else "worse")) if sig else \
            "no detectable difference"
        lines.append([name, f"{best['engine']} | {best['profile']}", fmt(best.get("sharpe")), fmt(v.get("baseline_sharpe")),
                      fmt(diff), f"{fmt(lo)} .. {fmt(hi)}", fmt(p), verdict])
    if lines:
        body.append("<h3>Best trial against each baseline (Sharpe difference, paired test on common dates; one "
                    "comparison each, not corrected for the trials searched: read it with the DSR)</h3>"
                    + table(["baseline", "best trial", "trial Sharpe", "baseline Sharpe", "difference", "CI",
                             "p-value", "verdict"], lines, table_id="vs-baselines-table", text_cols=2, raw=True))
    return section("baselines", "Against the baselines", "".join(body))


def _band(text: str) -> tuple[float, float] | None:
    try:
        parts = [float(x) for x in str(text).split("-")]
    except ValueError:
        return None
    return (parts[0], parts[-1]) if parts else None


def vol_section(rd: RunData, img: Path) -> str:
    t = at_base(rd, trials(rd))
    if t.empty or "annual_volatility" not in t:
        return section("volatility", "Realised volatility vs bands", "<p class='muted'>no matrix</p>")
    bands = {}
    for p, txt in zip(t["profile"], t.get("vol_band", pd.Series([""] * len(t)))):
        b = _band(txt)
        if b:
            bands[str(p)] = b
    pts = pd.DataFrame({"profile": t["profile"].astype(str), "label": t["engine"].astype(str),
                        "vol": t["annual_volatility"].astype(float)})
    body = []
    used = (rd.boot or {}).get("bands") or {}
    if used.get("why"):
        body.append(banner(f"Bands used: {used['why']}.", "good" if used.get("mode") == "scaled"
                           or used.get("calendar") == "crypto" else "warn", banner_id="bands-used"))
    if bands:
        plots.vol_bands(pts, dict(sorted(bands.items())), img / "vol_bands.png")
        body.append('<img id="vol-img" src="img/vol_bands.png" alt="volatility vs band">')
    rows = [[r["cell_id"], r["engine"], r["profile"], pct(r["annual_volatility"]), esc(r.get("vol_band")),
             pct(r.get("band_distance")), fmt(r.get("drift"))] for r in t.to_dict("records")]
    body.append(table(["cell", "engine", "profile", "realised vol %", "band", "distance %", "DRIFT"], rows,
                      raw=True, text_cols=3, table_id="vol-table"))
    return section("volatility", "Realised volatility vs each profile's band (base setting)", "".join(body))


#: fallback reasons (``allocation.engine``) and the rule each names
_FALLBACK_RULES = (("max_sharpe undefined", "max_sharpe undefined -> min_variance"),
                   ("zero covariance", "zero covariance -> fallback profile"),
                   ("solver chain failed", "solver chain failed -> fallback profile"))


def _fallback_rule(reason: str | None) -> str:
    text = str(reason or "")
    return next((rule for key, rule in _FALLBACK_RULES if key in text), "fallback (other)")


def relaxations_section(rd: RunData) -> str:
    """How often each profile was not itself (issue 19): per profile and backend, the windows whose
    allocation was relaxed or replaced by a fallback (the matrix's ``n_relaxed``/``n_fallback``,
    counted once over the cells of one simulator), what was relaxed or which rule replaced it (the
    ledger's allocation records), and every cell with a non-zero count."""
    m = rd.matrix
    title = "Allocations relaxed or replaced (how often a profile was not itself)"
    if m.empty or not {"n_relaxed", "n_fallback"} <= set(m.columns):
        return section("relaxations", title, "<p class='muted'>performance_matrix.csv has no n_relaxed / "
                                             "n_fallback columns</p>")
    body = ["<p class='muted'>A window's allocation is <b>relaxed</b> when a constraint or target was relaxed "
            "to stay feasible (market-neutral beta or LONG/SHORT share caps, the atom cap, the Barbell's "
            "Core/Aggressor split under the cluster cap) and a <b>fallback</b> when a documented rule replaced "
            "the profile (MaxSharpe undefined -> min variance; solver chain failed or zero covariance -> the "
            "fallback profile). Counts per window; cells of the two simulators share their allocations, so "
            "the first table counts the cells of one simulator.</p>"]
    one = m
    if "simulator" in m and m["simulator"].nunique() > 1:
        one = m[m["simulator"] == sorted(m["simulator"].astype(str).unique())[-1]]
    rows = []
    for (prof, be), g in one.groupby(["profile", "backend"], sort=True):
        n = int(g["n_windows"].sum()) if "n_windows" in g else None
        nr, nf = int(g["n_relaxed"].sum()), int(g["n_fallback"].sum())
        rows.append([prof, be, n, nr, nf, pct((nr + nf) / n) if n else "n/a"])
    body.append("<h3>Per profile and backend (windows over every engine and setting)</h3>" + table(
        ["profile", "backend", "windows", "relaxed", "fallback", "not itself %"], rows, text_cols=2,
        table_id="relaxations-table"))
    what: dict[tuple, list] = {}
    for a in rd.of(RecordType.ALLOCATION):
        key = (str(a.get("profile")), str(a.get("backend")))
        if a.get("fallback_used") or a.get("status") == "fallback":
            what.setdefault(key + (_fallback_rule(a.get("reason")),), []).append(None)
        elif a.get("status") == "relaxed":
            for name, value in sorted((a.get("relaxed") or {}).items()):
                what.setdefault(key + (name,), []).append(value)
    rows = []
    for (prof, be, name), vals in sorted(what.items()):
        nums = [float(v) for v in vals if isinstance(v, (int, float))]
        rows.append([prof, be, name, len(vals), fmt(min(nums)) if nums else "", fmt(max(nums)) if nums else ""])
    body.append("<h3>What was relaxed or which rule replaced the profile (ledger allocation records, every "
                "engine)</h3><p class='muted'>For a relaxed constraint, the relaxed values' range (e.g. the beta "
                "cap used; for <code>barbell_core_share</code>, the realised Core share instead of 0.9).</p>"
                + table(["profile", "backend", "relaxed constraint / fallback rule", "allocations", "min value",
                         "max value"], rows, raw=True, text_cols=3, table_id="relaxed-what-table"))
    cols = [c for c in ["cell_id", *DIMS, "n_windows", "n_relaxed", "n_fallback"] if c in m.columns]
    hit = m[(m["n_relaxed"] > 0) | (m["n_fallback"] > 0)]
    body.append(f"<h3>Cells with a relaxed or replaced window ({len(hit)} of {len(m)})</h3>" + table(
        [c.replace("_", " ") for c in cols], hit[cols].itertuples(index=False, name=None), text_cols=5,
        table_id="relaxed-cells-table"))
    return section("relaxations", title, "".join(body))


def window_index_section(bundles: list[UnitBundle]) -> str:
    """One row per window page, grouped by setting, with the v4 HTR stage and flag counts."""
    rows = []
    for b in bundles:
        v4 = b.selections.get("v4", {})
        rows.append([f'<a href="{esc(page_path(b.unit))}">{esc(b.unit)}</a>', esc(b.dates.get("cutoff", "n/a")),
                     esc(b.dates.get("test_start", "n/a")), esc(b.dates.get("test_end", "n/a")),
                     fmt(v4.get("htr_stage")), fmt(len(v4.get("atoms") or [])),
                     fmt((v4.get("manifest") or {}).get("hardened")), fmt(len(b.flags)),
                     esc(", ".join(sorted({f["kind"] for f in b.flags}))),
                     esc(dominant(b.regime_mix)), esc(mix_text(b.regime_mix))])  # issue 20
    return section("windows", f"Per-window forensic pages ({len(bundles)})", table(
        ["window", "cut-off", "test start", "test end", "v4 HTR stage", "v4 winners", "v4 hardened", "flags",
         "flag kinds", "regime", "regime days"], rows, raw=True, text_cols=4, table_id="windows-table"))


def summary_section(rd: RunData, n_windows: int) -> str:
    """Headline figures and, in words, what the evidence supports: the best trial's Sharpe with its CI,
    its DSR under the headline and the raw trial counts and the conclusion; each engine comparison as a
    verdict or "no detectable difference" with the smallest difference detectable at this length; PBO
    against its null spread. PSR is never shown for the best trial: it was selected, so only a deflated
    figure is evidence."""
    m, t = rd.matrix, trials(rd)
    best = t.sort_values("sharpe", ascending=False).iloc[0].to_dict() if not t.empty and "sharpe" in t else {}
    pbo_block = rd.boot.get("pbo") or {}
    ver = (rd.boot.get("paired_tests") or {}).get("verdicts") or {}
    base = rd.base_setting()
    pairs = [("cells", len(m)), ("trials", len(t)), ("window pages", n_windows),
             ("base setting (step, train, lookback)", ", ".join(map(str, base)) if base else None),
             ("best trial by Sharpe", f"{best.get('engine')} | {best.get('profile')} | step {best.get('step_size')}"
              f" (Sharpe {fmt(best.get('sharpe'))}, 95% CI {fmt(best.get('sharpe_ci_low'))} .. "
              f"{fmt(best.get('sharpe_ci_high'))})" if best else None)]
    if best:
        pairs += dsr_evidence(rd, best)
    pairs += [("ledger", f"verified, {rd.ledger.n_records} records" if rd.ledger.ok
               else f"FAILS verification at seq {rd.ledger.first_bad_seq}"),
              ("candidates point-in-time", rd.point_in_time),
              ("PBO", pbo_text(pbo_block) if pbo_block else None),
              ("liquidated cells", int(m["liquidated"].astype(bool).sum()) if "liquidated" in m else None),
              ("DRIFT cells", int(m["drift"].astype(bool).sum()) if "drift" in m else None)]
    for name, v in sorted(ver.items()):
        pairs.append((f"{name}: a better / b better (Holm-significant) of n",
                      f"{v.get('a_better_significant')} / {v.get('b_better_significant')} of {v.get('n')}"))
        pairs.append((f"{name}: verdict", comparison_text(v)))
    vs = ((rd.boot or {}).get("baselines") or {}).get("vs_best_trial") or {}
    for name in ("bh:benchmark", "bh:pool"):
        v = vs.get(name)
        if v and vs.get("best_trial"):
            what = "benchmark buy-and-hold" if name == "bh:benchmark" else "pool equal-weight buy-and-hold"
            pairs.append((f"best trial vs {what}", f"Sharpe difference {fmt(v.get('difference'))} (CI "
                          f"{fmt(v.get('ci_low'))} .. {fmt(v.get('ci_high'))}, p {fmt(v.get('pvalue'))}; "
                          f"{what} Sharpe {fmt(v.get('baseline_sharpe'))})"))
    from reports.meta_section import meta_summary_pairs  # issue 17: what the meta adds over the best sleeve
    pairs += meta_summary_pairs(rd)
    return section("summary", "Summary", kv_table(pairs, table_id="summary-table"))


def dsr_evidence(rd: RunData, best: dict) -> list[tuple[str, str]]:
    """The best trial's deflated Sharpe in words: headline and raw readings, and the conclusion."""
    d = rd.boot.get("dsr") or {}
    headline = best.get("dsr")
    if headline is None or pd.isna(headline):
        return [("best trial: deflated Sharpe", "not computed (fewer than 2 trials)")]
    method = str(best.get("dsr_method") or d.get("method") or "raw")
    n_raw = best.get("n_trials")
    n_cl = best.get("n_trials_clustered")
    raw = best.get("dsr_raw", headline)
    cl = best.get("dsr_clustered")
    n_head = n_raw if method == "raw" else n_cl
    text = f"DSR {fmt(headline)} deflating for {fmt(n_head)} trials ({method} count, the headline)"
    if method != "raw":
        text += f"; {fmt(raw)} for the raw count of {fmt(n_raw)}"
    if method != "clustered" and cl is not None and not pd.isna(cl):
        text += f"; {fmt(cl)} for {fmt(n_cl)} correlation clusters"
    significant = float(headline) > 0.95
    conclusion = (f"significant: the best trial's Sharpe beats the expected maximum of {fmt(n_head)} unskilled "
                  f"trials (DSR {fmt(headline)} > 0.95)" if significant else
                  f"not significant after deflating for {fmt(n_head)} trials: no evidence of skill beyond the "
                  f"best of {fmt(n_head)} tries (DSR {fmt(headline)} <= 0.95)")
    return [("best trial: deflated Sharpe", text), ("conclusion", conclusion)]


def comparison_text(v: dict) -> str:
    """A paired comparison in words: the verdict, or no detectable difference and the smallest one
    this sample could detect (80% power at Holm's first threshold, annualised Sharpe)."""
    a, b, n = v.get("a_better_significant") or 0, v.get("b_better_significant") or 0, v.get("n") or 0
    if a or b:
        return f"a better in {a} and b better in {b} of {n} matched pairs (Holm-significant)"
    mdd = v.get("detectable_difference")
    tail = f" (smallest detectable difference at this length: {fmt(mdd, 3)} annualised Sharpe)" if mdd else ""
    return f"no detectable difference in {n} matched pairs{tail}"


def pbo_text(pbo: dict) -> str:
    """PBO with its uncertainty: the null mean and spread from resampled demeaned trials."""
    val = pbo.get("pbo")
    null = pbo.get("null") or {}
    if not null or null.get("sd") is None:
        return fmt(val)
    z = (float(val) - float(null["mean"])) / float(null["sd"]) if null.get("sd") else None
    verdict = ("within the noise of a no-skill set" if z is None or abs(z) < 2 else
               ("below what no-skill trials give" if z < 0 else "above what no-skill trials give"))
    return (f"{fmt(val, 3)} (no-skill null {fmt(null['mean'], 3)} +/- {fmt(null['sd'], 3)} over "
            f"{null.get('reps')} resamples of the demeaned trials: {verdict})")


def alerts(rd: RunData) -> str:
    """Banners shown above everything: candidates not point-in-time, a ledger that fails verification,
    failed checks."""
    out = []
    if rd.point_in_time is False:
        out.append(banner("WARNING: candidates come from a single undated export (not point-in-time): "
                          "survivorship and look-ahead risk in every window.", "bad", banner_id="alert-pit"))
    if not rd.ledger.ok:
        out.append(banner(f"WARNING: the ledger fails verification ({rd.ledger.message}).", "bad",
                          banner_id="alert-ledger"))
    summ = rd.boot.get("checks") or {}
    if summ and not summ.get("ok", True):
        out.append(banner(f"{len(summ.get('failures') or [])} audit check(s) failed: see Audit checks.", "warn",
                          banner_id="alert-checks"))
    return "".join(out)
