"""One per-window forensic page: ``report/windows/<setting_id>/<k>.html`` (+ its dendrogram PNG).

Sources: the unit's ``portfolio_candidates.json`` (winners, rejected candidates with reasons,
linkage, funnel, manifest, pipeline audit), its ledger records (selection, allocation) and the
flags gathered by ``reports.units``. Realised volatility of a window is
``std(daily returns in the window, ddof=1) * sqrt(P)`` of the matching trial cell (vectorbt
simulator when present); the ex-ante volatility is the allocation's ``diagnostics
["ex_ante_vol_annual"]`` (both annualised fractions).
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from audit.regimes import REGIME_ORDER
from reports.html import bar, banner, esc, fmt, page, pct, section, status_pill, table
from reports.regime_data import dominant, mix_text
from reports.units import UnitBundle, page_path
from reports.window_plots import DendrogramCanvas, distinct_linkages, leaf_order


def _load_candidates(b: UnitBundle) -> dict[str, dict[str, Any]]:
    """Engines of ``portfolio_candidates.json`` merged over the selection records (file wins)."""
    engines: dict[str, dict[str, Any]] = {name: dict(rec) for name, rec in b.selections.items()}
    if b.candidates_path:
        try:
            doc = json.loads(Path(b.candidates_path).read_text())
        except (OSError, ValueError):
            doc = {}
        for name, e in (doc.get("engines") or {}).items():
            engines[name] = {**engines.get(name, {}), **e}
    for e in engines.values():
        man = e.get("manifest") or {}
        e.setdefault("shrinkage_intensity", man.get("shrinkage_intensity"))
        e.setdefault("hardened", man.get("hardened"))
    return dict(sorted(engines.items()))


def _rel_root(b: UnitBundle) -> str:
    return "../../"


def _nav(b: UnitBundle) -> str:
    parts = [f'<a id="back" href="{_rel_root(b)}index.html">tournament page</a>']
    if b.prev_unit:
        parts.append(f'<a href="{_rel_root(b)}{page_path(b.prev_unit)}">previous window</a>')
    if b.next_unit:
        parts.append(f'<a href="{_rel_root(b)}{page_path(b.next_unit)}">next window</a>')
    return '<nav class="toc">' + " ".join(parts) + "</nav>"


def _flags_html(b: UnitBundle) -> str:
    rows = [[f["kind"], status_pill(f["status"]), esc(f["where"]), esc(f["detail"])] for f in b.flags]
    head = banner(f"{len(b.flags)} flag(s) raised in this window", "bad" if b.flags else "good",
                  banner_id="flag-count")
    out = head + table(["flag", "status", "where", "detail"], rows, table_id="flags-table", raw=True,
                       text_cols=4)
    if b.cell_flags:
        kinds = Counter(f["kind"] for f in b.cell_flags)
        head = ", ".join(f"{k}: {n} cell(s)" for k, n in sorted(kinds.items()))
        out += (f"<details><summary>Cell-level flags of this setting (whole series, not this window alone): "
                f"{esc(head)}</summary>"
                + table(["flag", "status", "cell", "detail"],
                        [[f["kind"], status_pill(f["status"]), esc(f["where"]), esc(f["detail"])]
                         for f in b.cell_flags], table_id="cell-flags-table", raw=True, text_cols=4)
                + "</details>")
    return out


def _engines_html(engines: dict[str, dict]) -> str:
    rows = []
    for name, e in engines.items():
        f = e.get("funnel") or {}
        rows.append([name, e.get("spec_version"), e.get("htr_stage"), e.get("hardened"),
                     e.get("shrinkage_intensity"), len(e.get("winners") or e.get("atoms") or []),
                     len(e.get("rejected") or []) if "rejected" in e else e.get("n_rejected"),
                     f.get("n_clusters"), (e.get("metrics") or {}).get("avg_conviction",
                     (e.get("metrics") or {}).get("average_conviction"))])
    return table(["engine", "spec", "HTR stage", "hardened", "shrinkage", "winners", "rejected", "clusters",
                  "avg conviction"], rows, table_id="engines-table")


def _funnel_html(engines: dict[str, dict]) -> str:
    out = []
    for name, e in engines.items():
        f = e.get("funnel")
        if not f:
            out.append(f"<h3>{esc(name)}</h3><p class='muted'>no funnel recorded (baseline engine)</p>")
            continue
        wins = f.get("winners_by_stage") or {}
        steps = [("snapshot", f.get("snapshot")), ("deduplicated", f.get("deduplicated")),
                 ("after hard vetoes", f.get("after_hard_vetoes")),
                 ("after all vetoes (stage 1)", f.get("after_all_vetoes_stage1"))]
        steps += [(f"winners recruited at stage {s}" if str(s) not in ("0", "None") else "winners (no HTR stage)", n)
                  for s, n in sorted(wins.items(), key=lambda t: str(t[0]))]
        top = max([v for _, v in steps if isinstance(v, (int, float))] + [1])
        rows = [[k, f"{bar((v or 0) / top)}{fmt(v)}"] for k, v in steps]
        rows.append(["clusters", fmt(f.get("n_clusters"))])
        reasons = Counter(r for x in (e.get("rejected") or []) for r in (x.get("reasons") or []))
        out.append(f"<h3>{esc(name)}</h3><div class='grid'><div>"
                   + table(["step", "count"], rows, raw=True, table_id=f"funnel-{name}") + "</div><div>"
                   + table(["veto reason", "candidates"], sorted(reasons.items(), key=lambda t: (-t[1], t[0])),
                           table_id=f"vetoes-{name}") + "</div></div>" + _names_html(name, e))
    return "".join(out)


def _num(v) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_num(x) for x in v) + "]"
    if isinstance(v, (int, float)):
        return f"{v:.4g}"
    return "n/a" if v is None else str(v)


def _evidence_text(evidence: dict) -> str:
    """``reason: value vs threshold`` for each threshold rule that fired (``missing`` for a missing field)."""
    parts = []
    for reason, ev in sorted(evidence.items()):
        if ev.get("value") is None and ev.get("threshold") is None:
            parts.append(f"{reason}")
        else:
            parts.append(f"{reason}: {_num(ev.get('value'))} vs {_num(ev.get('threshold'))}")
    return "; ".join(parts)


def _names_html(name: str, e: dict) -> str:
    """The names behind the counts: every candidate at each funnel step, and every vetoed candidate
    with its reasons and the last HTR stage that saw it (sorted by reason, then symbol)."""
    rejected = e.get("rejected") or []
    winners = [w.get("id") for w in (e.get("winners") or [])]
    snapshot = sorted({*(r.get("id") for r in rejected), *winners} - {None})
    dup = {r.get("id") for r in rejected if any(str(x).startswith("duplicate") for x in r.get("reasons") or [])}
    after_hard = sorted(e.get("clusters") or {})
    steps = [("snapshot", snapshot), ("deduplicated", [i for i in snapshot if i not in dup]),
             ("after hard vetoes", after_hard), ("winners", sorted(winners))]
    lists = "".join(f"<details><summary>{esc(step)}: {len(ids)}</summary><p class='mono'>"
                    f"{esc(', '.join(ids)) or 'none'}</p></details>" for step, ids in steps)
    rows = sorted(([", ".join(r.get("reasons") or []), r.get("symbol"), r.get("id"), r.get("last_stage"),
                    _evidence_text(r.get("evidence") or {})]
                   for r in rejected), key=lambda x: (x[0], str(x[1]), str(x[2])))
    vetoed = table(["reasons", "symbol", "candidate", "last stage", "value vs threshold"], rows,
                   table_id=f"vetoed-{name}", text_cols=5,
                   caption="every candidate that did not win, sorted by reason (click a header to sort); "
                           "soft thresholds are those of the last HTR stage that saw the candidate")
    return (f"<details><summary>names at each step and every vetoed candidate ({len(rejected)})</summary>"
            f"{lists}{vetoed}</details>")


def _policy_events(e: dict) -> list[dict]:
    ev = []
    for x in e.get("pipeline_audit") or []:
        if x.get("event") in ("pass", "htr_pass"):
            ev.append(x.get("data") or {})
    return ev


def _htr_html(engines: dict[str, dict], min_winners: int) -> str:
    out = []
    for name, e in engines.items():
        passes = _policy_events(e)
        stage = e.get("htr_stage")
        if stage is None:
            out.append(f"<h3>{esc(name)}</h3><p class='muted'>no HTR loop (baseline engine)</p>")
            continue
        last = passes[-1] if passes else {}
        n = last.get("n_winners")
        if n is not None and n >= min_winners:
            why = f"stopped at stage {stage}: {n} winners >= {min_winners}"
        elif stage == 4:
            why = f"reached the last stage (4) with {n} winners (< {min_winners}): balanced alpha-leader fallback"
        else:
            why = f"stopped at stage {stage} with {n} winners"
        rows = []
        for p in passes:
            th = p.get("thresholds") or {k: p.get(k) for k in ("entropy_max", "efficiency_min", "adx_min")}
            rows.append([p.get("scorer", name), p.get("stage"), p.get("n_winners"), p.get("n_shorts"),
                         p.get("n_forced"), esc(json.dumps(th, default=str)),
                         esc(json.dumps(p.get("n_vetoed"), default=str))])
        rows = [[fmt(c) if i < 5 else c for i, c in enumerate(r)] for r in rows]
        out.append(f"<h3>{esc(name)}: stage {esc(stage)}</h3><p id='htr-why-{esc(name)}'>{esc(why)}</p>"
                   + table(["scorer", "stage", "winners", "shorts", "forced", "thresholds", "vetoed by reason"],
                           rows, raw=True, text_cols=1))
    return "".join(out)


def _hardening_html(engines: dict[str, dict]) -> str:
    rows = []
    for name, e in engines.items():
        dec = next((x.get("data") or {} for x in e.get("pipeline_audit") or []
                    if x.get("event") == "decided" and "hardened" in (x.get("data") or {})), {})
        rows.append([name, e.get("hardened"), e.get("shrinkage_intensity"), dec.get("entropy_mean"),
                     dec.get("critical_value"), dec.get("entropy_max"), dec.get("n")])
    return (table(["engine", "hardened", "shrinkage intensity", "mean entropy percentile",
                   "critical value", "entropy ceiling used", "candidates tested"], rows, table_id="hardening-table")
            + "<p class='muted'>Hardened when the pool's mean entropy percentile is not significantly below 0.5 "
              "(noise): the entropy ceiling tightens by 10% and the shrinkage intensity rises.</p>")


def _winners_html(engines: dict[str, dict]) -> str:
    out = []
    for name, e in engines.items():
        ws = e.get("winners")
        if ws is None:
            ws = [{"id": a} for a in e.get("atoms") or []]
        scorers = sorted({s for w in ws for s in (w.get("conviction") or {})})
        rows = [[w.get("id"), w.get("symbol"), w.get("direction"), w.get("logic"), w.get("cluster"),
                 w.get("sector"), w.get("htr_stage"), *[(w.get("conviction") or {}).get(s) for s in scorers]]
                for w in ws]
        out.append(f"<h3>{esc(name)}: {len(ws)} winners</h3>"
                   + table(["atom", "symbol", "direction", "logic", "cluster", "sector", "stage",
                            *[f"conviction {s}" for s in scorers]], rows, text_cols=6,
                           table_id=f"winners-{name}"))
    return "".join(out)


def _weights_html(b: UnitBundle) -> str:
    by_engine: dict[str, list[dict]] = {}
    for a in b.allocations:
        by_engine.setdefault(str(a.get("engine")), []).append(a)
    out = []
    for engine in sorted(by_engine):
        allocs = sorted(by_engine[engine], key=lambda a: (str(a.get("profile")), str(a.get("backend"))))
        cols = [f"{a.get('profile')}|{a.get('backend')}" for a in allocs]
        atoms = sorted({k for a in allocs for k in (a.get("weights") or {})})
        rows = [[aid, *[(a.get("weights") or {}).get(aid) for a in allocs]] for aid in atoms]
        rows.append(["sum", *[sum((a.get("weights") or {}).values()) for a in allocs]])
        out.append(f"<h3>{esc(engine)}</h3>" + table(["atom", *cols], rows, table_id=f"weights-{engine}"))
    return "".join(out) or "<p class='muted'>no allocation records for this window</p>"


def _split(a: dict) -> str:
    """The Barbell's realised Core / Aggressor shares (and the target when they differ); '' otherwise."""
    d = a.get("diagnostics") or {}
    if "core_share" not in d or "aggressor_share" not in d:
        return ""
    text = f"{fmt(d['core_share'])} / {fmt(d['aggressor_share'])}"
    target = d.get("core_share_target")
    if isinstance(target, (int, float)) and abs(float(d["core_share"]) - float(target)) > 1e-6:
        text += f" (target {fmt(target)} / {fmt(1.0 - float(target))})"
    return esc(text)


def _vol_html(b: UnitBundle) -> str:
    cell_of: dict[tuple, str] = {}
    for c in sorted(b.cells, key=lambda c: c.get("simulator") != "vectorbt"):
        cell_of.setdefault((c.get("engine"), c.get("profile"), c.get("backend")), c["cell_id"])
    rows = []
    for a in sorted(b.allocations, key=lambda a: (str(a.get("engine")), str(a.get("profile")), str(a.get("backend")))):
        cid = cell_of.get((a.get("engine"), a.get("profile"), a.get("backend")))
        real = b.vols.get(cid, {}).get("realised_vol") if cid else None
        ex = (a.get("diagnostics") or {}).get("ex_ante_vol_annual")
        rows.append([a.get("engine"), a.get("profile"), a.get("backend"), a.get("solver"),
                     status_pill("pass" if a.get("status") == "optimal" else "warn") + " " + esc(a.get("status")),
                     fmt(a.get("fallback_used")), esc(", ".join(a.get("binding") or [])),
                     esc(json.dumps(a.get("relaxed") or {})), _split(a), esc(a.get("reason") or ""),
                     fmt(ex), fmt(real),
                     fmt(None if ex is None or real is None else real - ex), esc(b.bands.get(str(a.get("profile")), "")),
                     esc(cid or "")])
    return table(["engine", "profile", "backend", "solver", "status", "fallback", "binding", "relaxed",
                  "Core / Aggressor", "reason", "ex-ante vol", "realised vol", "realised - ex-ante", "band",
                  "cell"], rows, raw=True, text_cols=3, table_id="vol-table")


def _leaves_html(groups: list, engines: dict[str, dict]) -> str:
    """Leaf order of each drawn dendrogram (numbered as on the plot's x axis) with each leaf's
    cluster; winners in bold."""
    out = []
    for names, z, labels in groups:
        e = engines[names[0]]
        clusters = e.get("clusters") or {}
        won = {w.get("id") for w in e.get("winners") or []}
        items = []
        for leaf in leaf_order(z, labels):
            text = f"{esc(leaf)} <span class='muted'>c{esc(clusters.get(leaf, '?'))}</span>"
            items.append(f"<li>{'<b>' + text + '</b>' if leaf in won else text}</li>")
        out.append(f"<h3>Leaves of {esc(', '.join(names))} (left to right; winners of {esc(names[0])} in bold)</h3>"
                   f"<ol class='leaves' id='leaves-{esc(names[0])}'>{''.join(items)}</ol>")
    return "".join(out)


def _regime_html(b: UnitBundle) -> str:
    """The window's regime mix: test days labelled calm / turbulent / crisis (issue 20; labels from the
    reference's volatility before each day, ``regime_labels.parquet``)."""
    mix = b.regime_mix
    if not mix:
        return "<p class='muted' id='regime-mix-none'>no regime labels in this run</p>"
    n = sum(mix.values())
    rows = [[r, mix.get(r, 0), pct(mix.get(r, 0) / n if n else None)] for r in (*REGIME_ORDER, "unlabelled")
            if r != "unlabelled" or mix.get(r)]
    return (f"<p id='regime-dominant'>Mostly {esc(dominant(mix))} ({esc(mix_text(mix))} days)</p>"
            + table(["regime", "test days", "share %"], rows, raw=True, table_id="regime-mix-table"))


def render_window(b: UnitBundle, report_dir: str | Path, canvas: DendrogramCanvas | None = None) -> Path:
    """Write the page (and its dendrogram) of one unit; returns the page path. ``canvas``: reusable
    figures for a batch of windows (a fresh one when None)."""
    report_dir = Path(report_dir)
    out = report_dir / page_path(b.unit)
    engines = _load_candidates(b)
    groups = distinct_linkages(engines)
    png = (canvas or DendrogramCanvas()).draw(groups, out.with_name(f"{b.window}_dendrogram.png"))
    dend = (f'<img id="dendrogram-img" src="{esc(png.name)}" alt="cluster dendrogram">' if png
            else "<p class='muted'>no linkage stored for this window</p>") + _leaves_html(groups, engines)
    d = b.dates
    dates = table(["cut-off", "fill", "test start", "test end", "train start"],
                  [[d.get("cutoff"), d.get("fill"), d.get("test_start"), d.get("test_end"), d.get("train_start")]],
                  table_id="dates-table", text_cols=5)
    body = "".join([
        section("dates", "Window", dates),
        section("regime", "Volatility regime of the test days", _regime_html(b)),
        section("flags", "Flags raised", _flags_html(b)),
        section("engines", "Engines", _engines_html(engines)),
        section("funnel", "Selection funnel and vetoes", _funnel_html(engines)),
        section("htr", "HTR stage reached and why", _htr_html(engines, b.min_winners)),
        section("hardening", "Entropy-aware hardening", _hardening_html(engines)),
        section("dendrogram", "Cluster dendrogram", dend),
        section("winners", "Winners (scores and sectors)", _winners_html(engines)),
        section("weights", "Weights per engine and profile|backend", _weights_html(b)),
        section("volatility", "Allocation status, ex-ante vs realised volatility (annualised)", _vol_html(b)),
    ])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page(f"Window {b.window} of {b.setting_id}", body, nav=_nav(b),
                        subtitle=f"cut-off {d.get('cutoff', 'n/a')}, test {d.get('test_start', 'n/a')} .. "
                                 f"{d.get('test_end', 'n/a')}"), encoding="utf-8")
    return out
