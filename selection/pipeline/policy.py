"""Stage 5, Policy (``SelectionController``): one recruitment pass per HTR stage (SELECTION_SPEC 5).

Recruitment at stage k, in this order, over the partitioned candidates (those without a hard veto),
ranked by the scorer's alpha (ties by candidate id, ascending):

1. per cluster, the members without any veto, one per identity (the best-scored), then the top
   ``top_n`` LONG and the top ``top_n`` SHORT (``max(top_n_floor, top_n)`` when a floor is set);
2. k >= 3: a cluster with no recruit gets its best-scored member (soft vetoes ignored) - "forced";
3. the sector cap (below);
4. k >= 4: while there are fewer than ``min_winners``, add the best-scored remaining candidates
   whatever their soft vetoes, skipping a sector once it holds ``floor(cap * min_winners)``;
5. the final cap ``max_winners``: drop the lowest alpha first, forced representatives last;
6. the sector cap again.

Sector cap: while a sector holds more than ``cap`` of the winners, drop the lowest-scored member of
the most over-full sector (largest count, ties by name), preferring members that are not their
cluster's only recruit. It is enforced only when the winners span at least ``ceil(1/cap)`` sectors
(3 at 40 %); otherwise it cannot hold and the pass records ``sector_cap_unenforceable``. The same
rule with the sectors available in the partition governs the skipping in step 4.
Winners are returned in alpha order (ties by id). Policy drop reasons, added to the veto reasons of a
non-winner: ``rank`` (outranked in its cluster/direction or not needed), ``identity`` (a better member
of the same identity in its cluster), ``sector_cap``, ``final_cap``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from selection.config import SelectionConfig
from selection.pipeline.context import PolicyOutcome, SelectionContext
from selection.pipeline.vetoes import counts_by_reason, reasons_by_id, soft_vetoes, stage_thresholds


@dataclass
class _Book:
    """Per-pass lookup tables over the partitioned candidates (sorted by alpha desc, id asc)."""

    order: list[str]
    alpha: dict[str, float]
    sector: dict[str, str]
    cluster: dict[str, int]
    identity: dict[str, str]
    direction: dict[str, str]


def _min_sectors(cap: float) -> int:
    return math.ceil(1.0 / cap - 1e-12)


def enforce_sector_cap(winners: list[str], book: _Book, cap: float | None,
                       dropped: dict[str, str], notes: list[str]) -> list[str]:
    """Drop winners until no sector holds more than ``cap`` of them (see module docstring)."""
    if cap is None or not winners:
        return winners
    w = list(winners)
    while True:
        counts: dict[str, int] = {}
        for i in w:
            counts[book.sector[i]] = counts.get(book.sector[i], 0) + 1
        n = len(w)
        over = [s for s, c in counts.items() if c > cap * n + 1e-12]
        if not over:
            return w
        if len(counts) < _min_sectors(cap):
            notes.append("sector_cap_unenforceable")
            return w
        worst = min(over, key=lambda s: (-counts[s], s))
        members = [i for i in w if book.sector[i] == worst]
        per_cluster: dict[int, int] = {}
        for i in w:
            per_cluster[book.cluster[i]] = per_cluster.get(book.cluster[i], 0) + 1
        shared = [i for i in members if per_cluster[book.cluster[i]] > 1]
        pool = shared or members
        victim = min(pool, key=lambda i: (book.alpha[i], _neg(i)))
        w.remove(victim)
        dropped[victim] = "sector_cap"


def _neg(s: str) -> tuple:
    """Key that sorts ids in descending order (so the lowest-ranked of equal alphas goes first)."""
    return tuple(-ord(ch) for ch in s) + (1,)


def recruit(stage: int, book: _Book, eligible: set[str], config: SelectionConfig,
            n_sectors_available: int) -> tuple[list[str], set[str], dict[str, str], list[str]]:
    """One pass of steps 1-6. Returns (winners, forced, policy drop reasons, notes)."""
    dropped: dict[str, str] = {}
    notes: list[str] = []
    top_n = config.effective_top_n()
    seen_identity: set[tuple[int, str]] = set()
    taken: dict[tuple[int, str], int] = {}
    winners: list[str] = []
    for i in book.order:  # step 1
        if i not in eligible:
            continue
        key = (book.cluster[i], book.identity[i])
        if key in seen_identity:
            dropped[i] = "identity"
            continue
        seen_identity.add(key)
        slot = (book.cluster[i], book.direction[i])
        if taken.get(slot, 0) >= top_n:
            dropped[i] = "rank"
            continue
        taken[slot] = taken.get(slot, 0) + 1
        winners.append(i)
    forced: set[str] = set()
    if stage >= 3:  # step 2
        have = {book.cluster[i] for i in winners}
        for i in book.order:
            c = book.cluster[i]
            if c not in have:
                have.add(c)
                winners.append(i)
                forced.add(i)
                dropped.pop(i, None)
    cap = config.sector_cap
    winners = enforce_sector_cap(winners, book, cap, dropped, notes)  # step 3
    if stage >= 4 and len(winners) < config.min_winners:  # step 4
        limit = None
        if cap is not None:
            if n_sectors_available >= _min_sectors(cap):
                limit = max(1, math.floor(cap * config.min_winners + 1e-12))
            else:
                notes.append("sector_cap_unenforceable")
        counts: dict[str, int] = {}
        for i in winners:
            counts[book.sector[i]] = counts.get(book.sector[i], 0) + 1
        current = set(winners)
        for i in book.order:
            if len(winners) >= config.min_winners:
                break
            if i in current:
                continue
            if limit is not None and counts.get(book.sector[i], 0) >= limit:
                continue
            winners.append(i)
            current.add(i)
            counts[book.sector[i]] = counts.get(book.sector[i], 0) + 1
            dropped.pop(i, None)
    if config.max_winners is not None and len(winners) > config.max_winners:  # step 5
        keep_order = sorted(winners, key=lambda i: (i not in forced, -book.alpha[i], i))
        for i in keep_order[config.max_winners:]:
            dropped[i] = "final_cap"
        winners = keep_order[: config.max_winners]
    winners = enforce_sector_cap(winners, book, cap, dropped, notes)  # step 6
    winners.sort(key=lambda i: (-book.alpha[i], i))
    forced &= set(winners)
    for i in book.order:
        if i not in dropped and i not in winners and i in eligible:
            dropped[i] = "rank"
    return winners, forced, dropped, sorted(set(notes))


def make_book(ctx: SelectionContext, scorer: str) -> _Book:
    ids = list(ctx.clusters.labels.index)
    alpha = ctx.inference_outputs.scores.loc[ids, scorer].to_numpy(dtype=np.float64)
    idx = np.lexsort((np.array(ids, dtype=object).astype(str), -alpha)) if ids else np.zeros(0, int)
    order = [ids[j] for j in idx]
    sub = ctx.raw_pool.loc[ids]
    return _Book(order=order, alpha=dict(zip(ids, alpha.tolist())),
                 sector=dict(zip(ids, sub["sector"].astype(str).tolist())),
                 cluster=dict(zip(ids, ctx.clusters.labels.to_numpy().tolist())),
                 identity=dict(zip(ids, sub["identity"].astype(str).tolist())),
                 direction=dict(zip(ids, sub["direction"].astype(str).tolist())))


@dataclass(frozen=True)
class SelectionController:
    """Policy: one HTR pass at ``stage`` on the scores of ``scorer``."""

    config: SelectionConfig
    stage: int
    scorer: str
    name: ClassVar[str] = "policy"
    reads: ClassVar[tuple[str, ...]] = ("raw_pool", "feature_store", "vetoes", "inference_outputs",
                                        "clusters", "params")
    writes: ClassVar[tuple[str, ...]] = ("winners", "audit_trail")

    def __call__(self, ctx: SelectionContext) -> SelectionContext:
        th = stage_thresholds(self.config, self.stage, float(ctx.params["entropy_max"]))
        soft = soft_vetoes(ctx.feature_store, th)
        book = make_book(ctx, self.scorer)
        soft_any = soft.to_numpy(dtype=bool).any(axis=1)
        clean_soft = set(soft.index[~soft_any])
        eligible = {i for i in book.order if i in clean_soft}
        n_sect = len(set(book.sector.values()))
        winners, forced, dropped, notes = recruit(self.stage, book, eligible, self.config, n_sect)
        hard_r = reasons_by_id(ctx.vetoes)
        soft_r = reasons_by_id(soft)
        wset = set(winners)
        reasons = {}
        for i in ctx.raw_pool.index.tolist():
            if i in wset:
                continue
            r = hard_r.get(i, ()) + soft_r.get(i, ())
            if i in dropped:
                r = r + (dropped[i],)
            reasons[i] = r
        prev = ctx.winners.get(self.scorer)
        recruited = dict(prev.recruited) if prev else {}
        for w in winners:  # the first pass that ever recruited it, not the previous pass only
            recruited.setdefault(w, self.stage)
        first = {w: recruited[w] for w in winners}
        passes = {**(prev.passes if prev else {}), self.stage: len(winners)}
        out = PolicyOutcome(scorer=self.scorer, stage=self.stage, winners=tuple(winners),
                            forced=frozenset(forced), first_stage=first, reasons=reasons,
                            passes=passes, notes=tuple(notes), recruited=recruited)
        vetoed = {**counts_by_reason(ctx.vetoes), **counts_by_reason(soft)}
        data = {"scorer": self.scorer, "stage": self.stage, "n_winners": len(winners),
                "n_vetoed": dict(sorted(vetoed.items())),
                "n_shorts": sum(book.direction[w] == "SHORT" for w in winners),
                "n_forced": len(forced), "notes": list(notes),
                "thresholds": {"entropy_max": th.entropy_max, "efficiency_min": th.efficiency_min,
                               "adx_min": th.adx_min, "sentiment_min": th.sentiment_min}}
        return ctx.model_copy(update={"winners": {**ctx.winners, self.scorer: out},
                                      "audit_trail": ctx.event(self.name, "pass", data)})
