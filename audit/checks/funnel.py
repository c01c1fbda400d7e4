"""Funnel trace per window (SELECTION_SPEC section 7): counts never rise before the winners and the
winners are a subset of the pool after hard vetoes."""
from __future__ import annotations

from typing import Iterable

from audit.checks.result import CheckResult, CheckStatus, make_result
from contracts.selection import Funnel

NAME = "funnel"


def check_funnel(window: int, funnel: Funnel, winner_ids: Iterable[str],
                 after_hard_veto_ids: Iterable[str], *, engine: str | None = None,
                 cell_id: str | None = None) -> CheckResult:
    """``fail`` when ``Funnel.invariant_errors()`` is non-empty, a winner is not in the
    after-hard-veto pool, or the id lists disagree with the funnel's counts (winners, and the pool
    size vs ``after_hard_vetoes``); ``pass`` otherwise. Ids must be in one namespace (candidate ids).
    """
    winners = list(winner_ids)
    pool = list(after_hard_veto_ids)
    errors = list(funnel.invariant_errors())
    outside = sorted(set(winners) - set(pool))
    if outside:
        errors.append(f"winners not in the after-hard-veto pool: {outside}")
    if len(set(winners)) != len(winners):
        errors.append("duplicate winner ids")
    if len(set(winners)) != funnel.winners:
        errors.append(f"{len(set(winners))} winner ids but funnel counts {funnel.winners}")
    if len(set(pool)) != funnel.after_hard_vetoes:
        errors.append(f"{len(set(pool))} pool ids but funnel after_hard_vetoes "
                      f"{funnel.after_hard_vetoes}")
    details = {"engine": engine, "errors": errors, "funnel": funnel.model_dump(),
               "n_winners": len(winners), "n_pool": len(pool), "outside_pool": outside}
    return make_result(NAME, CheckStatus.FAIL if errors else CheckStatus.PASS, details,
                       cell_id=cell_id, window=window)
