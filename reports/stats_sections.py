"""Statistics sections of the tournament page, from ``bootstrap.json``, the performance matrix and
the ledger's check records: PBO (CSCV logits), DSR per trial cell, the paired verdicts with Holm
p-values, SPA and MCS, temporal sensitivity, verification axes, HTR stages and the check summary.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from contracts.enums import RecordType
from reports import plots
from reports.html import banner, esc, fmt, pct, section, status_pill, table
from reports.rundata import RunData
from reports.regime_sections import regime_split_html
from reports.tournament_page import at_base, cell_labels, trials

SWEEP_DIMS = ("step_size", "train_window", "feature_lookback")
TOP_DIFFS = 25
MAX_LISTED = 12


def pbo_dsr_section(rd: RunData, img: Path) -> str:
    b = rd.boot
    body = []
    pbo = b.get("pbo") or {}
    if pbo:
        plots.pbo_histogram(pbo.get("lambdas") or [], pbo.get("pbo"), img / "pbo.png")
        body.append('<img id="pbo-img" src="img/pbo.png" alt="PBO logit histogram">')
        body.append(table(["statistic", "value"], [
            ["PBO (probability of backtest overfitting)", pbo.get("pbo")],
            ["probability of an out-of-sample loss", pbo.get("prob_oos_loss")],
            ["CSCV blocks", pbo.get("n_splits")], ["trials", pbo.get("n_trials")],
            ["observations", pbo.get("n_obs")], ["combinations", pbo.get("n_combinations")],
            ["degenerate trials", pbo.get("n_degenerate_trials")]], table_id="pbo-table", text_cols=1))
    else:
        body.append("<p class='muted' id='pbo-table'>PBO not computed (fewer than 2 trials or too few common "
                    "dates)</p>")
    eff = b.get("effective_trials") or {}
    d = b.get("dsr") or {}
    body.append(table(["trials", "common dates", "correlation clusters", "participation ratio (not used)",
                       "DSR headline method"],
                      [[b.get("n_trials"), b.get("common_dates"), d.get("n_trials_clustered"),
                        eff.get("n_effective", eff.get("n_trials")), d.get("method")]],
                      table_id="trials-table"))
    body.append("<p class='muted'>DSR (Bailey &amp; Lopez de Prado 2014) in two readings: the raw trial count with "
                "the variance of all trials' Sharpes, and the count of correlation clusters (average correlation "
                f"&ge; {esc(d.get('cluster_threshold', 0.9))}) with the variance of the clusters' Sharpes. The "
                "headline is the one whose false-positive rate benchmarks/calibration.py measures at most nominal. "
                "PSR is per cell and is not evidence for a trial picked as the best.</p>")
    t = trials(rd)
    if not t.empty and "dsr" in t:
        t = t.sort_values(["profile", "engine", "step_size", "train_window", "feature_lookback"])
        labels = [f"{r['engine']}|{r['profile']}|s{r['step_size']}t{r['train_window']}l{r['feature_lookback']}"
                  for r in t.to_dict("records")]
        plots.bars(labels, t["dsr"].astype(float).tolist(), img / "dsr.png",
                   title="Deflated Sharpe ratio per trial cell (0.95 dashed)", ylabel="DSR", hline=0.95)
        body.append('<h3>Deflated Sharpe ratio</h3><img id="dsr-img" src="img/dsr.png" alt="DSR per cell">')
        body.append(table(["cell", "label", "Sharpe", "PSR", "DSR", "DSR raw", "DSR clustered", "trials",
                           "clusters"],
                          [[r["cell_id"], lab, r.get("sharpe"), r.get("psr"), r.get("dsr"), r.get("dsr_raw"),
                            r.get("dsr_clustered"), r.get("n_trials"), r.get("n_trials_clustered")]
                           for lab, r in zip(labels, t.to_dict("records"))],
                          table_id="dsr-table", text_cols=2))
    return section("overfitting", "Overfitting: PBO and deflated Sharpe", "".join(body))


def verdicts_section(rd: RunData) -> str:
    pt = rd.boot.get("paired_tests") or {}
    body = []
    ver = pt.get("verdicts") or {}
    exc = rd.boot.get("excluded_trials")
    if exc:  # issue 15: degenerate selections are stated, never silently compared
        body.append(f"<p class='warning'>{exc.get('n')} cell(s) excluded from the trials and these "
                    f"verdicts: {esc(exc.get('reason', ''))}.</p>")
    body.append(table(["comparison", "pairs", "a better (Holm-significant)", "b better (Holm-significant)",
                       "mean Sharpe difference a-b", "smallest detectable difference"],
                      [[k, v.get("n"), v.get("a_better_significant"), v.get("b_better_significant"),
                        v.get("mean_difference"), v.get("detectable_difference")] for k, v in sorted(ver.items())],
                      table_id="verdicts-table"))
    if pt.get("n_pairs"):
        body.append(f"<p class='muted'>p-values: studentised HAC test of the Sharpe difference (Ledoit &amp; Wolf "
                    "2008, Newey-West lags); at or below alpha, confirmed by their studentised circular block "
                    f"bootstrap ({esc(pt.get('confirm_n_boot'))} draws, smallest p "
                    f"{esc(fmt(pt.get('min_achievable_pvalue')))}) and the larger p kept; Holm-corrected over "
                    f"{esc(pt.get('n_pairs'))} pairs (first threshold "
                    f"{esc(fmt(pt.get('holm_first_threshold')))}); CI: paired stationary bootstrap. Smallest "
                    "detectable difference: annualised Sharpe difference found with 80% power at Holm's first "
                    "threshold, from the median standard error.</p>")
    tests = sorted(pt.get("tests") or [], key=lambda x: (x.get("comparison", ""), x.get("profile", "")))
    body.append("<h3>Paired Sharpe-difference tests (HAC p-values, bootstrap CI; Holm-corrected)</h3>")
    body.append(table(["comparison", "profile", "step", "train", "lookback", "Sharpe a-b", "CI low", "CI high",
                       "p", "p Holm", "reject", "s.e."],
                      [[x.get("comparison"), x.get("profile"), x.get("step_size"), x.get("train_window"),
                        x.get("feature_lookback"), x.get("difference"), x.get("ci_low"), x.get("ci_high"),
                        x.get("pvalue"), x.get("pvalue_holm"), x.get("reject_holm"), x.get("se")] for x in tests],
                      table_id="tests-table", text_cols=2))
    spa = rd.boot.get("spa") or {}
    kinds = sorted({k for res in spa.values() for k in (res.get("pvalues") or {})})
    rows = [[prof, *[(res.get("pvalues") or {}).get(k) for k in kinds]] for prof, res in sorted(spa.items())]
    body.append("<h3>Hansen's SPA, studentised, against the random engine (base setting; H0: no engine beats "
                "random)</h3>"
                + table(["profile", *[f"p {k}" for k in kinds]], rows, table_id="spa-table"))
    mcs = rd.boot.get("mcs") or {}
    if mcs:
        pv = mcs.get("pvalues") or {}
        inc = set(mcs.get("included") or [])
        body.append("<h3>Model Confidence Set (base setting; loss: volatility-normalised returns, so models are "
                    "ranked by Sharpe)</h3>" + table(
            ["model", "in MCS", "p-value"], [[m, m in inc, p] for m, p in sorted(pv.items(), key=lambda t: -t[1])],
            table_id="mcs-table", text_cols=1))
    return section("verdicts", "Verdicts: v4 vs v3.4, champion vs challengers, engines vs random", "".join(body))


def sensitivity_section(rd: RunData) -> str:
    """Sharpe of each engine x profile across each swept dimension (others at the base setting)."""
    t = trials(rd)
    base = rd.base_setting()
    body = []
    if not t.empty and base is not None:
        for i, dim in enumerate(SWEEP_DIMS):
            others = [d for d in SWEEP_DIMS if d != dim]
            sub = t
            for d in others:
                sub = sub[sub[d] == base[SWEEP_DIMS.index(d)]]
            values = sorted(sub[dim].unique())
            if len(values) < 2:
                continue
            piv = sub.pivot_table(index=["engine", "profile"], columns=dim, values="sharpe", aggfunc="first")
            rows = [[e, p, *[piv.loc[(e, p)].get(v) for v in values]] for e, p in piv.index]
            body.append(f"<h3>{esc(dim.replace('_', ' '))} (base {base[i]})</h3>"
                        + table(["engine", "profile", *[f"{dim}={int(v)}" for v in values]], rows, text_cols=2,
                                table_id=f"sensitivity-{dim}"))
            body.append(regime_split_html(rd, dim, sub, values))  # issue 20: one column group per regime
    if not body:
        body.append("<p class='muted' id='sensitivity-none'>no temporal sweep in this run (the base setting's "
                    "split by volatility regime is in the next section)</p>")
    return section("sensitivity", "Temporal sensitivity (trial Sharpe)", "".join(body))


def verification_section(rd: RunData) -> str:
    """riskfolio vs native (weights) and vectorbt vs reference (daily returns): largest differences."""
    body = []
    labels = cell_labels(rd)
    v = rd.boot.get("verification") or {}
    if v:  # which windows the riskfolio backend verified (tournament.verification)
        worst = v.get("worst") or {}
        body.append(
            f"<p id='verification-mode'>optimiser-backend verification: <b>{esc(v.get('mode'))}</b> "
            f"({esc(', '.join(v.get('backends') or []))}); sample of base windows "
            f"{esc(v.get('sample_windows'))} of {esc(v.get('n_base_windows'))}; windows verified "
            f"{esc(v.get('windows_verified'))}; {esc(v.get('n_pairs'))} engine-profile-window pairs "
            f"({esc(v.get('by_reason'))}); largest |weight difference| {fmt(v.get('max_abs_weight_diff'))} "
            f"(cell {esc(worst.get('cell_id'))}, window {esc(worst.get('window'))}); largest |objective "
            f"difference| {fmt(v.get('max_abs_objective_diff'))}</p>")
    specs = [("backend_disagreement", "riskfolio vs native: max |weight difference|", "max_abs_weight_diff",
              ["native_cell", "riskfolio_cell", "worst_window", "windows_verified"]),
             ("simulator_disagreement", "vectorbt vs reference: max |daily return difference|",
              "max_abs_return_diff", ["vectorbt_cell", "reference_cell"])]
    for name, title, key, extra in specs:
        recs = [c for c in rd.checks if c.get("name") == name]
        recs.sort(key=lambda c: -(float((c.get("details") or {}).get(key) or 0.0)))
        n_bad = sum(c.get("status") != "pass" for c in recs)
        rows = [[esc(c.get("cell_id")), esc(labels.get(c.get("cell_id"), "")), status_pill(c.get("status")),
                 *[esc((c.get("details") or {}).get(e)) for e in extra],
                 fmt((c.get("details") or {}).get(key)), fmt((c.get("details") or {}).get("tolerance"))]
                for c in recs[:TOP_DIFFS]]
        body.append(f"<h3>{esc(title)}</h3><p>{len(recs)} comparisons, {n_bad} above tolerance "
                    f"(largest {min(TOP_DIFFS, len(recs))} shown)</p>"
                    + table(["cell", "label", "status", *extra, key.replace("_", " "), "tolerance"], rows,
                            raw=True, text_cols=3 + len(extra), table_id=f"{name}-table"))
    return section("verification", "Verification axes (not trials)", "".join(body))


def htr_section(rd: RunData, img: Path) -> str:
    h = rd.boot.get("htr_stages") or {}
    if not h:  # fall back to the selection records
        for rec in rd.of(RecordType.SELECTION):
            d = h.setdefault(str(rec.get("engine")), {"stages": {}, "hardened": 0, "windows": 0})
            st = str(rec.get("htr_stage"))
            d["stages"][st] = d["stages"].get(st, 0) + 1
            d["hardened"] += bool((rec.get("manifest") or {}).get("hardened"))
            d["windows"] += 1
    stages = sorted({s for d in h.values() for s in (d.get("stages") or {})}, key=str)
    rows = [[e, d.get("windows"), *[(d.get("stages") or {}).get(s, 0) for s in stages], d.get("hardened")]
            for e, d in sorted(h.items())]
    body = []
    real = [s for s in stages if s != "None"]
    if rows and real:
        counts = pd.DataFrame({s: [(d.get("stages") or {}).get(s, 0) for d in h.values()] for s in real},
                              index=list(h.keys())).sort_index()
        plots.stacked_stages(counts, img / "htr_stages.png")
        body.append('<img id="htr-img" src="img/htr_stages.png" alt="HTR stages">')
    body.append(table(["engine", "windows", *[f"stage {s}" for s in stages], "hardened windows"], rows,
                      table_id="htr-table"))
    return section("htr", "HTR stage distribution and hardening per engine", "".join(body))


def checks_section(rd: RunData) -> str:
    """Check counts by name, failures grouped by check (cells labelled), and the quarantine: windows
    flagged and, when any, the base trial cells' metrics with and without them."""
    summ = rd.boot.get("checks") or next((c for c in rd.of(RecordType.CHECK) if c.get("key") == "check_summary"),
                                         {})
    labels = cell_labels(rd)
    body = []
    if summ:
        ok = summ.get("ok")
        body.append(banner(f"Checks: {'no failure' if ok else 'FAILURES present'} "
                           f"({summ.get('n_checks', 'n/a')} checks)", "good" if ok else "bad",
                           banner_id="checks-status"))
        body.append(table(["check", "pass", "warn", "fail"],
                          [[n, v.get("pass"), v.get("warn"), v.get("fail")]
                           for n, v in (summ.get("by_name") or {}).items()], table_id="checks-table"))
        groups: dict[str, list[str]] = {}
        for f in summ.get("failures") or []:
            where = labels.get(f.get("cell_id"), f.get("cell_id"))
            if f.get("window") is not None:
                where = f"{where or ''} window {f.get('window')}".strip()
            groups.setdefault(str(f.get("name")), []).append(str(where))
        rows = [[name, len(ws), ", ".join(ws[:MAX_LISTED]) + (f" ... and {len(ws) - MAX_LISTED} more"
                                                              if len(ws) > MAX_LISTED else "")]
                for name, ws in sorted(groups.items())]
        body.append("<h3>Failures by check</h3>" + table(["check", "failures", "where"], rows,
                                                         table_id="failures-table", text_cols=3))
    q = rd.boot.get("quarantine") or {}
    if q:
        windows = q.get("windows") or []
        if not windows:
            body.append("<h3 id='quarantine-none'>No window quarantined (no market-wide outlier move)</h3>")
        else:
            body.append(f"<h3>Quarantined windows: {esc(', '.join(map(str, windows)))}</h3>")
            ww = q.get("metrics_with_and_without") or {}
            keep = set(at_base(rd, trials(rd)).get("cell_id", pd.Series(dtype=str)))
            rows = []
            for cid, v in sorted(ww.items()) if isinstance(ww, dict) else []:
                if not isinstance(v, dict) or (keep and cid not in keep):
                    continue
                a, x = v.get("all") or {}, v.get("ex_quarantine") or {}
                rows.append([esc(labels.get(cid, cid)), fmt(a.get("sharpe")), fmt(x.get("sharpe")),
                             pct(a.get("max_drawdown")), pct(x.get("max_drawdown")), fmt(v.get("n_bars_excluded"))])
            body.append("<p class='muted'>Base-setting trial cells: metrics of the whole series and with the "
                        "quarantined windows' bars removed.</p>" + table(
                            ["cell", "Sharpe all", "Sharpe ex-quarantine", "max DD all", "max DD ex-quarantine",
                             "bars excluded"], rows, table_id="quarantine-table", raw=True))
    if not body:
        body.append("<p class='muted'>no check summary</p>")
    return section("checks", "Audit checks and quarantine", "".join(body))
