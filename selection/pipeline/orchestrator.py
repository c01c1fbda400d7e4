"""The v4 orchestrator: runs the stages, checks the stage protocol at every transition.

``prepare`` runs what is computed once per window (ingestion, features, hard vetoes and the
hardening decision, scoring, partitioning); ``select`` runs the HTR loop (policy passes at stages
1..4, stopping at the first with ``min_winners`` and the sector cap held) for each requested
scorer, then synthesis.

Protocol checks (``run_stage``): every declared read is present (not None) before the call; the
stage returns a ``SelectionContext``; no field outside ``writes`` changed (identity check: the
context is copied, never mutated); every declared write is present after the call; the audit trail
only grew; the new context re-validates (types and cross-field consistency). A breach raises
``StageContractError`` naming the stage and the field.
"""
from __future__ import annotations

from pydantic import ValidationError

from market.entropy import EntropyNullCache
from market.view import PastView
from selection.config import SelectionConfig
from selection.pipeline.context import SelectionContext, Stage, StageContractError
from selection.pipeline.features import FeatureGenerator
from selection.pipeline.ingestion import DiscoveryProvider
from selection.pipeline.partition import FactorBucketizer
from selection.pipeline.policy import PassMemo, SelectionController
from selection.pipeline.scoring import ConvictionScorer
from selection.pipeline.synthesis import StrategySynthesizer
from selection.pipeline.vetoes import HardeningDecision

CHAMPION = "log_mps"
HTR_STAGES = (1, 2, 3, 4)


def run_stage(stage: Stage, ctx: SelectionContext) -> SelectionContext:
    """Run one stage under the protocol checks of the module docstring."""
    name = getattr(stage, "name", type(stage).__name__)
    fields = list(SelectionContext.model_fields)
    for f in stage.reads:
        if f not in fields:
            raise StageContractError(f"stage {name}: declares unknown read field {f!r}")
        if getattr(ctx, f) is None:
            raise StageContractError(f"stage {name}: reads {f!r}, which is not set yet")
    out = stage(ctx)
    if not isinstance(out, SelectionContext):
        raise StageContractError(f"stage {name}: returned {type(out).__name__}, not SelectionContext")
    for f in fields:
        if f not in stage.writes and getattr(out, f) is not getattr(ctx, f):
            raise StageContractError(f"stage {name}: wrote {f!r}, which it does not declare")
    for f in stage.writes:
        if getattr(out, f) is None:
            raise StageContractError(f"stage {name}: declares {f!r} but left it unset")
    old = ctx.audit_trail
    if len(out.audit_trail) <= len(old) or any(a is not b for a, b in zip(old, out.audit_trail)):
        raise StageContractError(f"stage {name}: audit_trail must grow by appending events")
    try:
        return SelectionContext.model_validate(dict(out))
    except ValidationError as exc:
        msgs = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'context'}: {e['msg']}"
                         for e in exc.errors(include_url=False, include_input=False))
        raise StageContractError(f"stage {name}: invalid context after the stage: {msgs}") from exc


def prepare(view: PastView, config: SelectionConfig, null_cache: EntropyNullCache) -> SelectionContext:
    """Ingestion, features, hardening decision, scoring and partitioning (once per window)."""
    ctx = SelectionContext(view=view, config=config, null_cache=null_cache)
    stages: list[Stage] = [
        DiscoveryProvider(config),
        FeatureGenerator(config.feature_lookback),
        HardeningDecision(config),
        ConvictionScorer(config, champion=CHAMPION),
        FactorBucketizer(config.corr_lookbacks, config.min_common_obs, config.cluster_cut,
                         config.max_clusters),
    ]
    for st in stages:
        ctx = run_stage(st, ctx)
    return ctx


def htr(ctx: SelectionContext, scorer: str, memo: PassMemo | None = None) -> SelectionContext:
    """The HTR loop for one scorer: stages 1..4, stop at the first with ``min_winners`` winners
    and a sector cap that held (issue 15: the cap swaps rather than shrinks, so a pass whose
    eligible pool cannot hold the cap goes on to the next stage, whose relaxed thresholds bring
    more substitutes; stage 4's result is kept whatever it is). Without a cap: SELECTION_SPEC's rule.
    ``memo``: what the passes of one ``select`` call share (``policy.PassMemo``)."""
    for k in HTR_STAGES:
        ctx = run_stage(SelectionController(ctx.config, k, scorer, memo), ctx)
        out = ctx.winners[scorer]
        if len(out.winners) >= ctx.config.min_winners and "sector_cap_unenforceable" not in out.notes:
            break
    return ctx


def select(ctx: SelectionContext, scorers: list[str]) -> SelectionContext:
    """HTR for each scorer (in the given order), then synthesis. The passes share one
    ``policy.PassMemo`` (books, soft and hard vetoes computed once for all scorers and stages)."""
    memo = PassMemo()
    for s in scorers:
        ctx = htr(ctx, s, memo)
    return run_stage(StrategySynthesizer(), ctx)


def run_pipeline(view: PastView, config: SelectionConfig, null_cache: EntropyNullCache | None = None,
                 scorers: list[str] | None = None) -> SelectionContext:
    """The whole v4 pipeline for one window; ``scorers`` defaults to the champion only."""
    ctx = prepare(view, config, null_cache if null_cache is not None else EntropyNullCache())
    return select(ctx, scorers or [CHAMPION])
