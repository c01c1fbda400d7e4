"""``contracts.SelectionResult`` of one engine from a finished context (SELECTION_SPEC section 7).

Conventions: the funnel's ``winners_by_stage`` counts winners by the first HTR stage that recruited
them; baselines (no HTR) count theirs under stage 0. ``rejected`` lists the ingestion drops
(``last_stage`` None) and every pooled non-winner with its veto and policy reasons (``last_stage``
= the last HTR stage run; None for baselines). Metrics: ``cluster_density`` (None when no cluster
has two members), ``avg_conviction`` (mean alpha of the winners under the engine's scorer; None
without winners), ``pool_diversity`` (``1 / sum share^2`` of the winners' clusters; 0 without
winners).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from contracts.atom import StrategyAtom
from contracts.enums import SpecVersion
from contracts.selection import Funnel, RejectedCandidate, SelectionResult
from selection.pipeline.context import SelectionContext
from selection.pipeline.vetoes import soft_veto_flags, stage_thresholds, veto_evidence

SHARED_STAGES = ("ingestion", "features", "hardening", "scoring", "partitioning")


def stage1_survivors(ctx: SelectionContext) -> int:
    """Candidates with no hard veto and no soft veto at stage-1 thresholds (window's entropy_max)."""
    ids = ctx.clusters.labels.index
    th = stage_thresholds(ctx.config, 1, float(ctx.params["entropy_max"]))
    fs = ctx.feature_store
    pos = fs.index.get_indexer(ids)
    if (pos < 0).any():
        raise KeyError(f"stage1_survivors: clustered id(s) {list(ids[pos < 0])[:5]} not in the feature store")
    # each row's flags read only that row: flag every row once, count the clustered ones
    flags = soft_veto_flags(fs, th)
    if not flags:
        return len(pos)
    vetoed = np.column_stack(list(flags.values())).any(axis=1)
    return int((~vetoed[pos]).sum())


def manifest(ctx: SelectionContext, degenerate: Optional[str] = None) -> dict[str, Any]:
    """The window's manifest; ``degenerate`` (a reason) marks a selection that is not the engine's
    own decision (an unfitted challenger recruits by candidate id): ``degenerate`` True and
    ``degenerate_reason``. Every v4-like result carries ``degenerate``."""
    p = ctx.params
    out = {"shrinkage_intensity": float(p["shrinkage_intensity"]), "hardened": bool(p["hardened"]),
           "entropy_mean": float(p["entropy_mean"]), "critical_value": float(p["critical_value"]),
           "entropy_max": float(p["entropy_max"]), "degenerate": degenerate is not None}
    if degenerate is not None:
        out["degenerate_reason"] = degenerate
    return out


def degenerate_reason(ctx: SelectionContext, scorer: str) -> Optional[str]:
    """Why ``scorer``'s selection is degenerate (its diagnostics say ``unfitted``), else None."""
    diag = ctx.inference_outputs.diagnostics.get(scorer, {})
    if diag.get("status") != "unfitted":
        return None
    return (f"scorer {scorer!r} unfitted: {diag.get('n_obs', 0)} training rows < "
            f"{diag.get('min_obs', '?')} needed ({diag.get('history_bars', '?')} bars of history); "
            "every candidate scores the same and winners are taken by candidate id")


def metrics(ctx: SelectionContext, atoms: tuple[StrategyAtom, ...], scorer: Optional[str]) -> dict:
    n = len(atoms)
    if n:
        _, counts = np.unique([a.cluster for a in atoms], return_counts=True)
        share = counts / n
        diversity = float(1.0 / np.sum(share * share))
        conv = float(np.mean([a.conviction[scorer] for a in atoms])) if scorer else None
    else:
        diversity, conv = 0.0, None
    return {"cluster_density": ctx.clusters.density, "avg_conviction": conv, "pool_diversity": diversity,
            "n_winners": n}


@dataclass
class ResultParts:
    """What the results of every engine of one finished context read alike, computed once
    (``result_parts``): the stage-1 survivors, each pooled id's symbol, the veto evidence's columns
    (a cache ``veto_evidence`` fills) and the atoms' tables over the partitioned candidates
    (``synthesis.atom_tables``, built on first use by a baseline). A function of the context's
    pool, feature store, clusters, scores and config, which ``select`` does not change; valid for
    that context and its copies with another ``view`` (twins), never for another window."""

    stage1: int
    symbol: dict[str, str]
    evidence_columns: dict = field(default_factory=dict)
    atom_tables: Optional[tuple] = None


def result_parts(ctx: SelectionContext) -> ResultParts:
    """The ``ResultParts`` of ``ctx`` (after partitioning)."""
    symbol = dict(zip(ctx.raw_pool.index.tolist(), ctx.raw_pool["symbol"].astype(str).tolist()))
    return ResultParts(stage1=stage1_survivors(ctx), symbol=symbol)


def build_result(ctx: SelectionContext, engine: str, spec_version: SpecVersion,
                 atoms: tuple[StrategyAtom, ...], reasons: dict[str, tuple[str, ...]],
                 last_stage: Optional[int], htr_stage: Optional[int], scorer: Optional[str],
                 events: list[dict[str, Any]], degenerate: Optional[str] = None,
                 parts: Optional[ResultParts] = None) -> SelectionResult:
    """Assemble the result of ``engine`` (shared events first, then ``events``). ``parts``: the
    context's ``result_parts`` (computed here when None).

    The rejected candidates are built with ``model_construct`` (their fields are built here with
    their declared types: ids and symbols ``str``, reasons a list of ``str``, ``last_stage`` an int
    or None, ``evidence`` ``veto_evidence``'s dicts); the result itself is validated, and
    tests/selection/test_v4_registry.py checks that every result equals its own re-validation."""
    parts = parts if parts is not None else result_parts(ctx)
    part = ctx.clusters
    by_stage: dict[int, int] = {}
    for a in atoms:
        k = a.htr_stage if a.htr_stage is not None else 0
        by_stage[k] = by_stage.get(k, 0) + 1
    funnel = Funnel(snapshot=int(ctx.params["n_snapshot"]), deduplicated=len(ctx.raw_pool),
                    after_hard_vetoes=len(part.labels), after_all_vetoes_stage1=parts.stage1,
                    winners_by_stage=dict(sorted(by_stage.items())), n_clusters=len(part.sizes))
    rejected = [RejectedCandidate(id=d["id"], symbol=d["symbol"], reasons=[d["reason"]], last_stage=None)
                for d in ctx.params.get("dropped", ())]
    won = {a.id for a in atoms}
    symbol = parts.symbol
    lost = {i: tuple(reasons.get(i, ())) for i in symbol if i not in won}
    th = stage_thresholds(ctx.config, last_stage or 1, float(ctx.params["entropy_max"]))
    evidence = veto_evidence(ctx.feature_store, ctx.raw_pool, ctx.config, len(ctx.returns), th, lost,
                             parts.evidence_columns)
    stage = None if last_stage is None else int(last_stage)
    construct = RejectedCandidate.model_construct
    for i, rs in lost.items():
        rejected.append(construct(id=str(i), symbol=symbol[i], reasons=[str(r) for r in rs], last_stage=stage,
                                  evidence=evidence.get(i, {})))
    shared = [e for e in ctx.audit_trail if e["stage"] in SHARED_STAGES]
    return SelectionResult(
        engine=engine, spec_version=spec_version, window=ctx.view.window.index,
        cutoff_date=ctx.view.cutoff_date.isoformat(), atoms=list(atoms),
        clusters={str(k): int(v) for k, v in zip(part.labels.index.tolist(), part.labels.tolist())},
        htr_stage=htr_stage,
        manifest=manifest(ctx, degenerate), funnel=funnel, rejected=rejected,
        linkage=None if part.linkage is None else part.linkage.tolist(),
        linkage_labels=list(part.order), pipeline_audit=shared + list(events),
        metrics=metrics(ctx, atoms, scorer))


def v4_result(ctx: SelectionContext, engine: str, scorer: str,
              parts: Optional[ResultParts] = None) -> SelectionResult:
    """The result of the v4 engine that recruits with ``scorer`` (``parts``: ``build_result``)."""
    out = ctx.winners[scorer]
    events = [e for e in ctx.audit_trail
              if e["stage"] in ("policy", "synthesis") and e["data"].get("scorer") == scorer]
    return build_result(ctx, engine, SpecVersion.V4, ctx.atoms[scorer], out.reasons, out.stage,
                        out.stage, scorer, events, degenerate_reason(ctx, scorer), parts)
