"""``portfolio_candidates.json`` content for one window, all engines (SELECTION_SPEC section 6).

Per engine: ``spec_version``, ``htr_stage``, the window's ``shrinkage_intensity`` and ``hardened``
flag (and the rest of the manifest), the winners with every atom field, every rejected candidate
with its reasons and the stage at which it was last considered, the clusters, the linkage (for the
dendrogram) with its labels, the funnel, the metrics and the pipeline audit. Everything is plain
JSON (no NaN: non-finite floats become null).
"""
from __future__ import annotations

import math
from typing import Any

from contracts.selection import SelectionResult


def _clean(v: Any) -> Any:
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def engine_payload(r: SelectionResult) -> dict[str, Any]:
    """One engine's part of the file."""
    return _clean({
        "engine": r.engine, "spec_version": r.spec_version.value, "window": r.window,
        "cutoff_date": r.cutoff_date, "htr_stage": r.htr_stage,
        "shrinkage_intensity": r.shrinkage, "hardened": bool(r.manifest.get("hardened", False)),
        "manifest": r.manifest,
        "winners": [a.model_dump(mode="json") for a in r.atoms],
        "rejected": [x.model_dump(mode="json") for x in r.rejected],
        "clusters": r.clusters, "linkage": r.linkage, "linkage_labels": r.linkage_labels,
        "funnel": r.funnel.model_dump(mode="json") if r.funnel else None,
        "metrics": r.metrics, "pipeline_audit": r.pipeline_audit,
    })


def engine_payload_json(d: dict[str, Any]) -> dict[str, Any]:
    """``engine_payload`` from a selection already dumped with ``model_dump(mode="json")`` (what a
    unit's JSON holds): the same content without dumping the models again. Non-finite floats are
    cleaned only when present (``_clean`` is the identity on finite JSON)."""
    man = d.get("manifest") or {}
    out = {
        "engine": d["engine"], "spec_version": d["spec_version"], "window": d["window"],
        "cutoff_date": d["cutoff_date"], "htr_stage": d.get("htr_stage"),
        "shrinkage_intensity": float(man.get("shrinkage_intensity", 0.01)),
        "hardened": bool(man.get("hardened", False)), "manifest": man,
        "winners": d["atoms"], "rejected": d["rejected"], "clusters": d["clusters"], "linkage": d["linkage"],
        "linkage_labels": d["linkage_labels"], "funnel": d["funnel"], "metrics": d["metrics"],
        "pipeline_audit": d["pipeline_audit"]}
    return out


def portfolio_candidates_json(selections: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``portfolio_candidates`` from the selections' JSON dumps (``UnitResult.to_json()["selections"]``):
    the same document, built without a second dump of every model (a unit's worker writes it)."""
    if not selections:
        return {"window": None, "cutoff_date": None, "engines": {}}
    first = next(iter(selections.values()))
    return {"window": first["window"], "cutoff_date": first["cutoff_date"],
            "engines": {name: engine_payload_json(selections[name]) for name in sorted(selections)}}


def portfolio_candidates(results: dict[str, SelectionResult]) -> dict[str, Any]:
    """JSON-ready content of ``portfolio_candidates.json`` (engines in sorted name order)."""
    if not results:
        return {"window": None, "cutoff_date": None, "engines": {}}
    first = next(iter(results.values()))
    return {"window": first.window, "cutoff_date": first.cutoff_date,
            "engines": {name: engine_payload(results[name]) for name in sorted(results)}}
