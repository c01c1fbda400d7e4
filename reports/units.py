"""Per-window bundles: everything a window page shows, gathered once from the run data.

A unit is one window of one sweep setting (``<setting_id>/<k>``). Checks and events are indexed
once (by cell and by window) so that building a bundle costs O(its own records), which keeps the
report linear in the number of windows.

Flags of a window (``UnitBundle.flags``): allocation fallbacks and non-optimal statuses; the
quarantine check of that window (computed on the base setting's windows only); a failed funnel
check of an engine; SHORT-sign violations recorded for that window; liquidations and forced closes
(delisting, bust) dated inside the window's test slice; the backend disagreement whose worst window
it is. Cell-level flags (metric mismatch, simulator disagreement, DRIFT) concern a cell's whole
series and are listed separately (``cell_flags``) for the cells of the window's setting.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from contracts.enums import RecordType
from reports.regime_data import load_labels, window_mixes
from reports.rundata import RunData, setting_id, window_vols

CELL_CHECKS = ("metric_mismatch", "simulator_disagreement", "volatility_band")


@dataclass
class UnitBundle:
    """Inputs of one window page (plain data: picklable for a process pool)."""

    unit: str
    setting_id: str
    window: int
    dates: dict[str, str]
    selections: dict[str, dict[str, Any]]
    allocations: list[dict[str, Any]]
    cells: list[dict[str, Any]]
    vols: dict[str, dict[str, Any]]
    flags: list[dict[str, Any]] = field(default_factory=list)
    cell_flags: list[dict[str, Any]] = field(default_factory=list)
    candidates_path: str | None = None
    prev_unit: str | None = None
    next_unit: str | None = None
    min_winners: int = 15
    bands: dict[str, str] = field(default_factory=dict)
    regime_mix: dict[str, int] = field(default_factory=dict)  # test days per volatility regime (issue 20)


def page_path(unit: str) -> str:
    """Path of a unit's page relative to ``report/`` (``windows/<setting_id>/<k>.html``)."""
    sid, k = unit.split("/")
    return f"windows/{sid}/{int(k)}.html"


def _date(x: Any) -> str:
    if x is None or (isinstance(x, float) and pd.isna(x)):
        return "n/a"
    try:
        return pd.Timestamp(x).strftime("%Y-%m-%d")
    except (ValueError, TypeError):
        return str(x)


def _setting_order(sid: str, base_sid: str | None) -> tuple:
    """Base setting first, then by (step, train, lookback) numerically when the id parses."""
    nums = []
    for part in sid.split("_"):
        digits = part[1:]
        nums.append(int(digits) if digits.isdigit() else 0)
    return (sid != base_sid, nums, sid)


def _units(rd: RunData, base_sid: str | None = None) -> list[tuple[str, int]]:
    """(setting_id, window) of every unit known from windows.parquet, the ledger or the files."""
    seen: set[tuple[str, int]] = set()
    w = rd.frames["windows.parquet"]
    for sid, k in zip(w["setting_id"], w["window"]):
        seen.add((str(sid), int(k)))
    for rec in rd.of(RecordType.WINDOW) + rd.of(RecordType.SELECTION) + rd.of(RecordType.ALLOCATION):
        unit = rec.get("unit")
        if isinstance(unit, str) and "/" in unit:
            sid, k = unit.rsplit("/", 1)
            if k.isdigit():
                seen.add((sid, int(k)))
    sel = rd.run_dir / "selection"
    if sel.is_dir():
        for p in sel.glob("*/*/portfolio_candidates.json"):
            if p.parent.name.isdigit():
                seen.add((p.parent.parent.name, int(p.parent.name)))
    return sorted(seen, key=lambda t: (_setting_order(t[0], base_sid), t[1]))


def collect_units(rd: RunData) -> list[UnitBundle]:
    """One bundle per unit, in (setting id, window) order, with prev/next links."""
    base = rd.base_setting()
    base_sid = setting_id(*base) if base else None
    units = _units(rd, base_sid)
    cells = rd.frames["cells.parquet"]
    cells_by_setting: dict[str, list[dict]] = {}
    for row in cells.to_dict("records"):
        sid = setting_id(row["step_size"], row["train_window"], row["feature_lookback"])
        cells_by_setting.setdefault(sid, []).append({k: (v.item() if hasattr(v, "item") else v)
                                                     for k, v in row.items()})
    cell_setting = {c["cell_id"]: sid for sid, cs in cells_by_setting.items() for c in cs}
    bands = {}
    if not rd.matrix.empty and "vol_band" in rd.matrix:
        bands = dict(zip(rd.matrix["profile"].astype(str), rd.matrix["vol_band"].astype(str)))

    wdates: dict[tuple[str, int], dict[str, str]] = {}
    for row in rd.frames["windows.parquet"].to_dict("records"):
        wdates[(str(row["setting_id"]), int(row["window"]))] = {
            k: _date(row.get(k)) for k in ("cutoff", "fill", "test_start", "test_end", "train_start")}
    for rec in rd.of(RecordType.WINDOW):
        if rec.get("setting_id") is not None and rec.get("window") is not None:
            wdates.setdefault((str(rec["setting_id"]), int(rec["window"])), {
                k: _date(rec.get(k)) for k in ("cutoff", "fill", "test_start", "test_end", "train_start")})

    sel: dict[str, dict[str, dict]] = {}
    for rec in rd.of(RecordType.SELECTION):
        sel.setdefault(str(rec.get("unit")), {})[str(rec.get("engine"))] = rec
    alloc: dict[str, list[dict]] = {}
    for rec in rd.of(RecordType.ALLOCATION):
        alloc.setdefault(str(rec.get("unit")), []).append(rec)

    vols: dict[tuple[str, int], dict[str, dict]] = {}
    for row in window_vols(rd.frames["returns.parquet"], rd.periods_per_year).to_dict("records"):
        sid = cell_setting.get(row["cell_id"])
        if sid is not None:
            vols.setdefault((sid, int(row["window"])), {})[row["cell_id"]] = {
                "realised_vol": float(row["realised_vol"]), "n_bars": int(row["n_bars"])}

    mixes = window_mixes(load_labels(rd.run_dir), wdates)
    wflags, cflags = _index_flags(rd, cell_setting, base_sid, wdates)
    labels = {c["cell_id"]: f"{c['engine']}|{c['profile']}|{c['backend']}|{c['simulator']}"
              for cs in cells_by_setting.values() for c in cs}
    for fl in [f for fs in cflags.values() for f in fs]:
        fl["where"] = f"{labels.get(fl['where'], '')} {fl['where']}".strip()
    try:
        min_winners = int(rd.run_start.get("parameters", {}).get("htr", {}).get("min_winners", 15))
    except (TypeError, ValueError):
        min_winners = 15
    out = []
    for i, (sid, k) in enumerate(units):
        unit = f"{sid}/{k}"
        cand = rd.run_dir / "selection" / sid / str(k) / "portfolio_candidates.json"
        b = UnitBundle(
            unit=unit, setting_id=sid, window=k, dates=wdates.get((sid, k), {}),
            selections=sel.get(unit, {}), allocations=alloc.get(unit, []),
            cells=cells_by_setting.get(sid, []), vols=vols.get((sid, k), {}),
            flags=wflags.get((sid, k), []), cell_flags=cflags.get(sid, []),
            candidates_path=str(cand) if cand.is_file() else None,
            prev_unit=f"{units[i - 1][0]}/{units[i - 1][1]}" if i > 0 and units[i - 1][0] == sid else None,
            next_unit=(f"{units[i + 1][0]}/{units[i + 1][1]}"
                       if i + 1 < len(units) and units[i + 1][0] == sid else None),
            min_winners=min_winners, bands=bands, regime_mix=mixes.get((sid, k), {}))
        b.flags = b.flags + _allocation_flags(b.allocations)
        out.append(b)
    return out


def _allocation_flags(allocs: list[dict]) -> list[dict]:
    flags = []
    for a in allocs:
        who = f"{a.get('engine')}|{a.get('profile')}|{a.get('backend')}"
        if a.get("fallback_used"):
            flags.append({"kind": "fallback solver", "status": "warn", "where": who,
                          "detail": f"solver {a.get('solver')}, status {a.get('status')}: {a.get('reason')}"})
        elif a.get("status") not in (None, "optimal"):
            flags.append({"kind": "allocation status", "status": "warn", "where": who,
                          "detail": f"status {a.get('status')}: {a.get('reason')}"})
    return flags


def _num(x: Any) -> str:
    """A float in a flag's text: 4 significant digits; anything else as is."""
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _canonical(name: Any) -> str:
    """Check names as this module matches them: ``outlier_quarantine`` -> ``quarantine``,
    ``zero_bankruptcy`` -> ``bankruptcy`` (the audit's names), others unchanged."""
    n = str(name)
    for short in ("quarantine", "bankruptcy"):
        if n.endswith(short):
            return short
    return n


def _index_flags(rd: RunData, cell_setting: dict[str, str], base_sid: str | None,
                 wdates: dict[tuple[str, int], dict[str, str]]
                 ) -> tuple[dict[tuple[str, int], list[dict]], dict[str, list[dict]]]:
    """Window flags by (setting id, window) and cell-level flags by setting id."""
    wf: dict[tuple[str, int], list[dict]] = {}
    cf: dict[str, list[dict]] = {}
    for c in rd.checks:
        name, status, det = _canonical(c.get("name")), c.get("status"), c.get("details") or {}
        cid, k = c.get("cell_id"), c.get("window")
        if name == "quarantine" and status != "pass" and base_sid is not None and k is not None:
            wf.setdefault((base_sid, int(k)), []).append({
                "kind": "quarantine", "status": status, "where": "market",
                "detail": f"reasons {det.get('reasons')}, worst span return {det.get('worst_span_return')}"})
        elif name == "funnel" and status != "pass" and k is not None and isinstance(cid, str):
            sid = cid.split(":", 1)[0]
            wf.setdefault((sid, int(k)), []).append({
                "kind": "funnel", "status": status, "where": det.get("engine", cid),
                "detail": "; ".join(map(str, det.get("errors") or [])) or str(det.get("outside_pool"))})
        elif name == "directional" and status != "pass":
            sid = cell_setting.get(cid)
            for v in det.get("violations") or []:
                if sid is not None and v.get("window") is not None:
                    wf.setdefault((sid, int(v["window"])), []).append({
                        "kind": "sign check", "status": status, "where": f"{cid} {v.get('atom_id')}",
                        "detail": f"stage {v.get('stage')}: {v}"})
        elif name == "bankruptcy" and status != "pass":
            sid = cell_setting.get(cid)
            lw = det.get("liquidated_window")
            if sid is not None and lw is not None:
                wf.setdefault((sid, int(lw)), []).append({
                    "kind": "bankruptcy", "status": status, "where": cid,
                    "detail": f"liquidated on {det.get('liquidated_date')}, final equity {det.get('final_equity')}"})
        elif name == "backend_disagreement" and status != "pass":
            sid = cell_setting.get(cid)
            if sid is not None and det.get("worst_window") is not None:
                wf.setdefault((sid, int(det["worst_window"])), []).append({
                    "kind": "backend disagreement", "status": status, "where": cid,
                    "detail": f"max |weight diff| {_num(det.get('max_abs_weight_diff'))} vs tol {det.get('tolerance')}"})
        elif name in CELL_CHECKS and status != "pass":
            sid = cell_setting.get(cid)
            if sid is None:
                continue
            if name == "volatility_band":
                band = "-".join(_num(float(x)) for x in det.get("band") or [])
                detail = f"DRIFT: realised vol {_num(det.get('realised_vol'))} vs band {band}"
            elif name == "metric_mismatch":
                bad = {m: v for m, v in (det.get("metrics") or {}).items() if not v.get("ok", True)}
                detail = f"off tolerance: {bad}" if bad else "simulator NaN replaced by the audit rule"
            else:
                detail = f"max |return diff| {_num(det.get('max_abs_return_diff'))} vs tol {det.get('tolerance')}"
            cf.setdefault(sid, []).append({"kind": name.replace("_", " "), "status": status,
                                           "where": cid, "detail": detail})
    spans: dict[str, tuple[list[str], list[tuple[str, int]]]] = {}
    for (s, k), d in sorted(wdates.items(), key=lambda t: (t[0][0], t[1].get("test_start", ""))):
        if d.get("test_start", "n/a") != "n/a":
            starts, rest = spans.setdefault(s, ([], []))
            starts.append(d["test_start"])
            rest.append((d["test_end"], k))
    for rec in rd.of(RecordType.SIMULATION):
        ev = rec.get("event")
        if not isinstance(ev, dict):
            continue
        sid = cell_setting.get(ev.get("cell_id"))
        if sid is None or sid not in spans:
            continue
        day = _date(ev.get("date"))
        starts, rest = spans[sid]
        i = bisect_right(starts, day) - 1
        if i < 0 or day > rest[i][0]:
            continue
        wf.setdefault((sid, rest[i][1]), []).append({
            "kind": str(ev.get("type", "event")).replace("_", " "), "status": "warn",
            "where": f"{ev.get('cell_id')} {ev.get('atom_id') or ''}".strip(),
            "detail": f"on {day}: {ev}"})
    return wf, cf
