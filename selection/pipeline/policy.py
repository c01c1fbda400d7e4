"""Stage 5, Policy (``SelectionController``): one recruitment pass per HTR stage (SELECTION_SPEC 5).

Recruitment at stage k over the partitioned candidates (those without a hard veto), ranked by the
scorer's alpha (ties by candidate id, ascending):

1. per cluster, the members without any veto, one per identity (the best-scored), then the top
   ``top_n`` LONG and the top ``top_n`` SHORT (``max(top_n_floor, top_n)`` when a floor is set);
2. k >= 3: a cluster with no recruit gets its best-scored member (soft vetoes ignored) - "forced";
3. the size of the pass: ``N = |recruits|``; at k >= 4 raised to ``min(min_winners, |pool|)``
   (the balanced fallback), then capped at ``max_winners``. The winners are the first ``N`` of the
   priority list: the recruits ordered forced first then by alpha (the final cap drops the lowest
   alpha first, forced representatives last), then (k >= 4) the remaining pool in alpha order,
   whatever its soft vetoes;
4. the sector cap (below), which changes who wins, never how many.

Sector cap (issue 15; replaces the drop rule of SELECTION_SPEC 5, which could collapse the winners:
20 + 20 candidates in two sectors gave 25 winners, one more candidate in a third sector gave 5). The
cap allows each sector ``q = floor(cap * N)`` winners. While a sector holds more than ``q``, its
lowest-ranked winner (forced representatives last, then a cluster's only recruit last, then the
lowest alpha, ties by id descending) is swapped for the best-scored substitute of a sector holding
fewer than ``q``: substitutes are the non-winners without a veto at this stage (at k >= 4 without a
hard veto, as the fallback), not already represented by their identity in their cluster, in alpha
order. The cap takes precedence over ``top_n`` (a substitute may be a cluster's fourth recruit).
Each swap removes one excess and creates none, so the cap holds whenever the pool can hold it at
size ``N`` (``sum_s min(pool_s, q) >= N``, up to identity collisions); otherwise the pass keeps the
``N`` winners, records ``sector_cap_unenforceable`` and the sector shares (and the HTR loop goes on
to the next stage, whose relaxed thresholds bring more substitutes; ``orchestrator.htr``; a cap that
cannot hold at stage 4 is kept, stated, in the result). Consequences: the number
of winners does not depend on the cap, so adding an eligible candidate of a new identity never
reduces it (the uncapped size is monotone), and at stage 4 a pool of at least ``min_winners``
candidates without a hard veto always gives at least ``min_winners`` winners. (Adding a candidate
of an identity already in its cluster, in the other direction, can displace a recruit through the
one-per-identity rule of step 1, as in v3.4; that is not a sector-cap effect.)

Winners are returned in alpha order (ties by id). Policy drop reasons, added to the veto reasons of a
non-winner: ``rank`` (outranked in its cluster/direction or not needed), ``identity`` (a better member
of the same identity in its cluster), ``sector_cap`` (swapped out by the cap), ``final_cap``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from selection.config import SelectionConfig
from selection.pipeline.context import PolicyOutcome, SelectionContext, positions
from selection.pipeline.vetoes import (Thresholds, counts_by_reason, reasons_by_id, soft_vetoes,
                                       stage_thresholds)


@dataclass
class _Book:
    """Per-pass lookup tables over the partitioned candidates (sorted by alpha desc, id asc)."""

    order: list[str]
    alpha: dict[str, float]
    sector: dict[str, str]
    cluster: dict[str, int]
    identity: dict[str, str]
    direction: dict[str, str]


@dataclass(frozen=True)
class CapOutcome:
    """What the sector cap did in one pass: ``quota`` per sector, whether it ``held``, the final
    ``shares`` (sector -> share of the winners) and the number of ``swaps``."""

    quota: int
    held: bool
    shares: dict[str, float]
    swaps: int


def _neg(s: str) -> tuple:
    """Key that sorts ids in descending order (so the lowest-ranked of equal alphas goes first)."""
    return tuple(-ord(ch) for ch in s) + (1,)


def _shares(winners: list[str], book: _Book) -> dict[str, float]:
    n = len(winners)
    counts: dict[str, int] = {}
    for i in winners:
        counts[book.sector[i]] = counts.get(book.sector[i], 0) + 1
    return {s: counts[s] / n for s in sorted(counts)} if n else {}


def apply_sector_cap(winners: list[str], supply: list[str], book: _Book, cap: float | None,
                     forced: set[str], dropped: dict[str, str]) -> tuple[list[str], CapOutcome | None]:
    """Swap winners for substitutes until no sector holds more than ``floor(cap * N)`` of the ``N``
    winners, or no substitute is left (see the module docstring). ``supply`` is in priority order."""
    if cap is None or not winners:
        return winners, None
    w = list(winners)
    n = len(w)
    quota = math.floor(cap * n + 1e-12)
    counts: dict[str, int] = {}
    for i in w:
        counts[book.sector[i]] = counts.get(book.sector[i], 0) + 1
    taken = {(book.cluster[i], book.identity[i]) for i in w}
    pool = [i for i in supply if i not in set(w)]
    swaps = 0
    while True:
        over = [s for s, c in counts.items() if c > quota]
        if not over:
            break
        sub = next((i for i in pool if counts.get(book.sector[i], 0) < quota
                    and (book.cluster[i], book.identity[i]) not in taken), None)
        if sub is None:
            break
        worst = min(over, key=lambda s: (-counts[s], s))
        per_cluster: dict[int, int] = {}
        for i in w:
            per_cluster[book.cluster[i]] = per_cluster.get(book.cluster[i], 0) + 1
        members = [i for i in w if book.sector[i] == worst]
        victim = min(members, key=lambda i: (i in forced, per_cluster[book.cluster[i]] == 1,
                                             book.alpha[i], _neg(i)))
        w.remove(victim)
        w.append(sub)
        pool.remove(sub)
        taken.discard((book.cluster[victim], book.identity[victim]))
        taken.add((book.cluster[sub], book.identity[sub]))
        counts[book.sector[victim]] -= 1
        counts[book.sector[sub]] = counts.get(book.sector[sub], 0) + 1
        dropped[victim] = "sector_cap"
        dropped.pop(sub, None)
        forced.discard(victim)
        swaps += 1
    held = max(counts.values()) <= cap * n + 1e-12
    return w, CapOutcome(quota=quota, held=held, shares=_shares(w, book), swaps=swaps)


def recruit(stage: int, book: _Book, eligible: set[str], config: SelectionConfig
            ) -> tuple[list[str], set[str], dict[str, str], list[str], CapOutcome | None]:
    """One pass of steps 1-4. Returns (winners, forced, policy drop reasons, notes, cap outcome)."""
    dropped: dict[str, str] = {}
    notes: list[str] = []
    top_n = config.effective_top_n()
    seen_identity: set[tuple[int, str]] = set()
    taken: dict[tuple[int, str], int] = {}
    recruits: list[str] = []
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
        recruits.append(i)
    forced: set[str] = set()
    if stage >= 3:  # step 2
        have = {book.cluster[i] for i in recruits}
        for i in book.order:
            c = book.cluster[i]
            if c not in have:
                have.add(c)
                recruits.append(i)
                forced.add(i)
                dropped.pop(i, None)
    # step 3: the size of the pass and the priority list
    size = len(recruits)
    chosen = set(recruits)
    priority = sorted(recruits, key=lambda i: (i not in forced, -book.alpha[i], i))
    if stage >= 4:
        size = max(size, min(config.min_winners, len(book.order)))
        priority += [i for i in book.order if i not in chosen]
    if config.max_winners is not None:
        size = min(size, config.max_winners)
    winners = priority[:size]
    for i in priority[size:]:
        if i in chosen:
            dropped[i] = "final_cap"
    forced &= set(winners)
    for i in winners:
        dropped.pop(i, None)
    # step 4: the sector cap swaps, never shrinks
    wset = set(winners)
    supply = [i for i in book.order if i not in wset and (stage >= 4 or i in eligible)]
    winners, cap = apply_sector_cap(winners, supply, book, config.sector_cap, forced, dropped)
    if cap is not None and not cap.held:
        notes.append("sector_cap_unenforceable")
    winners.sort(key=lambda i: (-book.alpha[i], i))
    forced &= set(winners)
    for i in book.order:
        if i not in dropped and i not in winners and i in eligible:
            dropped[i] = "rank"
    return winners, forced, dropped, sorted(set(notes)), cap


def _book_tables(ctx: SelectionContext) -> tuple[list, dict, dict, dict, dict]:
    """The scorer-independent part of a book: the partitioned ids and their sector, cluster,
    identity and direction (the values of ``raw_pool.loc[ids][col]``, taken by position)."""
    ids = ctx.clusters.labels.index.tolist()
    pool = ctx.raw_pool
    pos = positions(pool.index, ids)

    def col(name: str) -> list:
        return pool[name].take(pos).astype(str).tolist()

    return (ids, dict(zip(ids, col("sector"))), dict(zip(ids, ctx.clusters.labels.to_numpy().tolist())),
            dict(zip(ids, col("identity"))), dict(zip(ids, col("direction"))))


def make_book(ctx: SelectionContext, scorer: str, tables: tuple | None = None) -> _Book:
    """The book of ``scorer`` (``tables``: ``_book_tables(ctx)``, computed here when None)."""
    ids, sector, cluster, identity, direction = tables if tables is not None else _book_tables(ctx)
    scores = ctx.inference_outputs.scores
    # the values of ``scores.loc[ids, scorer]``, taken by position
    alpha = scores[scorer].to_numpy(dtype=np.float64)[positions(scores.index, ids)]
    idx = np.lexsort((np.array(ids, dtype=object).astype(str), -alpha)) if ids else np.zeros(0, int)
    order = [ids[j] for j in idx]
    return _Book(order=order, alpha=dict(zip(ids, alpha.tolist())), sector=sector, cluster=cluster,
                 identity=identity, direction=direction)


@dataclass
class PassMemo:
    """What the policy passes of one ``orchestrator.select`` call compute alike, computed once: each
    scorer's book (its scorer-independent tables shared by every scorer), the soft vetoes per
    threshold values (stages 2-4 relax alike, so they share theirs; both scorers share each stage's)
    with their reasons and counts, and the hard vetoes' reasons and counts. Valid for the contexts of
    one ``select`` call only: a pass writes only ``winners`` and ``audit_trail`` (``run_stage``
    checks it), so the pool, clusters, scores, feature store, vetoes and ``entropy_max`` these are
    computed from are the same in every pass. An explicit object per call, never shared between
    windows. The books and tables are read, never written (``recruit``)."""

    tables: tuple | None = None
    books: dict = field(default_factory=dict)
    soft: dict = field(default_factory=dict)
    hard: tuple | None = None

    def book(self, ctx: SelectionContext, scorer: str) -> _Book:
        if scorer not in self.books:
            if self.tables is None:
                self.tables = _book_tables(ctx)
            self.books[scorer] = make_book(ctx, scorer, self.tables)
        return self.books[scorer]

    def soft_vetoes(self, ctx: SelectionContext, th: Thresholds) -> tuple:
        """(flags, reasons by id, counts by reason) of ``soft_vetoes(feature_store, th)``."""
        key = (th.sentiment_min, th.entropy_max, th.efficiency_min, th.adx_min)
        if key not in self.soft:
            self.soft[key] = _soft(ctx, th)
        return self.soft[key]

    def hard_vetoes(self, ctx: SelectionContext) -> tuple:
        """(reasons by id, counts by reason) of the hard vetoes."""
        if self.hard is None:
            self.hard = (reasons_by_id(ctx.vetoes), counts_by_reason(ctx.vetoes))
        return self.hard


def _soft(ctx: SelectionContext, th: Thresholds) -> tuple:
    soft = soft_vetoes(ctx.feature_store, th)
    return soft, reasons_by_id(soft), counts_by_reason(soft)


@dataclass(frozen=True)
class SelectionController:
    """Policy: one HTR pass at ``stage`` on the scores of ``scorer``."""

    config: SelectionConfig
    stage: int
    scorer: str
    #: what the passes of one ``select`` call share (``PassMemo``); None computes everything here
    memo: PassMemo | None = field(default=None, compare=False, repr=False)
    name: ClassVar[str] = "policy"
    reads: ClassVar[tuple[str, ...]] = ("raw_pool", "feature_store", "vetoes", "inference_outputs",
                                        "clusters", "params")
    writes: ClassVar[tuple[str, ...]] = ("winners", "audit_trail")

    def __call__(self, ctx: SelectionContext) -> SelectionContext:
        th = stage_thresholds(self.config, self.stage, float(ctx.params["entropy_max"]))
        memo = self.memo
        if memo is None:
            soft, soft_r, soft_n = _soft(ctx, th)
            book = make_book(ctx, self.scorer)
            hard_r, hard_n = reasons_by_id(ctx.vetoes), counts_by_reason(ctx.vetoes)
        else:
            soft, soft_r, soft_n = memo.soft_vetoes(ctx, th)
            book = memo.book(ctx, self.scorer)
            hard_r, hard_n = memo.hard_vetoes(ctx)
        soft_any = soft.to_numpy(dtype=bool).any(axis=1)
        clean_soft = set(soft.index[~soft_any])
        eligible = {i for i in book.order if i in clean_soft}
        winners, forced, dropped, notes, cap = recruit(self.stage, book, eligible, self.config)
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
        vetoed = {**hard_n, **soft_n}
        data = {"scorer": self.scorer, "stage": self.stage, "n_winners": len(winners),
                "n_vetoed": dict(sorted(vetoed.items())),
                "n_shorts": sum(book.direction[w] == "SHORT" for w in winners),
                "n_forced": len(forced), "notes": list(notes),
                "sector_cap": None if cap is None else {
                    "cap": self.config.sector_cap, "quota": cap.quota, "held": cap.held,
                    "swaps": cap.swaps, "shares": cap.shares},
                "thresholds": {"entropy_max": th.entropy_max, "efficiency_min": th.efficiency_min,
                               "adx_min": th.adx_min, "sentiment_min": th.sentiment_min}}
        return ctx.model_copy(update={"winners": {**ctx.winners, self.scorer: out},
                                      "audit_trail": ctx.event(self.name, "pass", data)})
