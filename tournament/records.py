"""Ledger records of a unit, each with a stable ``key`` so that a resumed run appends it once."""
from __future__ import annotations

from typing import Any, Iterator

from contracts.enums import RecordType, SpecVersion
from tournament.unit import UnitResult

#: execution statistics (may differ across executors and worker counts; not decisions)
EXECUTION_KEYS = frozenset({"cache_hits", "cache_misses"})
ENGINE_SPEC = {"v3.4": SpecVersion.V34, "raw": SpecVersion.BASELINE, "random": SpecVersion.BASELINE}


def spec_of(engine: str) -> SpecVersion:
    """``3.4`` for the legacy engine, ``baseline`` for raw/random, ``4.0-mlops`` for v4 and challengers."""
    return ENGINE_SPEC.get(engine, SpecVersion.V4)


def degenerate_warning(res: UnitResult, engine: str, dates) -> dict[str, Any]:
    """The warning record of a degenerate selection (an engine that could not decide, e.g. an
    unfitted challenger recruiting by candidate id), naming the setting, window and cut-off."""
    w, sid, unit = res.key.window, res.key.setting.id, res.key.id
    reason = res.selections[engine].manifest.get("degenerate_reason", "degenerate selection")
    cutoff = dates[w.cutoff].isoformat()
    return {"key": f"warning:degenerate:{unit}:{engine}", "code": "degenerate_selection", "unit": unit,
            "setting_id": sid, "window": w.index, "cutoff": cutoff, "engine": engine, "reason": reason,
            "message": f"setting {sid} window {w.index} (cut-off {cutoff}): engine {engine}'s selection "
                       f"is degenerate ({reason}); its cells are excluded from the trials and verdicts"}


def degenerate_windows(results: dict[str, UnitResult]) -> dict[tuple[str, str], list[int]]:
    """(setting id, engine) -> windows whose selection is degenerate (sorted; only non-empty)."""
    out: dict[tuple[str, str], list[int]] = {}
    for res in results.values():
        for engine, sel in res.selections.items():
            if sel.manifest.get("degenerate", False):
                out.setdefault((res.key.setting.id, engine), []).append(res.key.window.index)
    return {k: sorted(v) for k, v in sorted(out.items())}


def unit_records(res: UnitResult, dates) -> Iterator[tuple[RecordType, SpecVersion, dict[str, Any]]]:
    """window, then selection per engine, then allocation per engine x profile x backend."""
    w, sid, unit = res.key.window, res.key.setting.id, res.key.id
    yield RecordType.WINDOW, SpecVersion.RUN, {
        "key": f"window:{unit}", "unit": unit, "setting_id": sid, "window": w.index,
        "cutoff": dates[w.cutoff].isoformat(), "fill": dates[w.fill_bar].isoformat(),
        "test_start": dates[w.test_start].isoformat(), "test_end": dates[w.test_end].isoformat(),
        "train_start": dates[w.train_start].isoformat(), "seconds": res.seconds}
    for engine, sel in res.selections.items():
        degenerate = bool(sel.manifest.get("degenerate", False))
        yield RecordType.SELECTION, spec_of(engine), {
            "key": f"selection:{unit}:{engine}", "unit": unit, "engine": engine,
            "htr_stage": sel.htr_stage, "manifest": sel.manifest,
            "funnel": sel.funnel.model_dump() if sel.funnel else None,
            "atoms": [a.id for a in sel.atoms], "metrics": sel.metrics,
            "n_rejected": len(sel.rejected), "degenerate": degenerate,
            # HTR thresholds used at each stage pass are in the events
            "pipeline_audit": sel.pipeline_audit}
        if degenerate:
            yield RecordType.WARNING, spec_of(engine), degenerate_warning(res, engine, dates)
    for k, alloc in res.allocations.items():
        engine, profile, backend = k.split("|")
        diag = {d: v for d, v in alloc.diagnostics.items() if d not in EXECUTION_KEYS}
        execution = {d: v for d, v in alloc.diagnostics.items() if d in EXECUTION_KEYS}
        yield RecordType.ALLOCATION, spec_of(engine), {
            "key": f"allocation:{unit}:{k}", "unit": unit, "engine": engine, "profile": profile,
            "backend": backend, "weights": alloc.weights, "solver": alloc.solver, "status": alloc.status,
            "fallback_used": alloc.fallback_used, "reason": alloc.reason, "binding": alloc.binding,
            "relaxed": alloc.relaxed, "diagnostics": diag, "execution": execution}
