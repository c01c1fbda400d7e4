"""Baseline engines ``raw`` and ``random`` (spec_version ``baseline``).

Both read the v4 context after partitioning, so they get the same pool, hard vetoes and clusters:

- ``raw``: every candidate without a hard veto, in id order;
- ``random``: ``n`` candidates drawn without replacement among those without a hard veto, where
  ``n`` is the number of v4 (champion) winners; the seed derives from the base seed and the window
  key (``random_seed``), never from execution order. Atoms in id order.

Their atoms carry ``htr_stage`` None and the conviction of every scorer; the funnel counts their
winners under stage 0; ``rejected`` lists the hard-vetoed candidates (``raw``) and, for ``random``,
the undrawn ones with ``random:not_drawn``.
"""
from __future__ import annotations

import hashlib

import numpy as np

from contracts.enums import SpecVersion
from contracts.selection import SelectionResult
from selection.pipeline.context import SelectionContext
from selection.pipeline.results import ResultParts, build_result
from selection.pipeline.synthesis import atom_tables, make_atoms
from selection.pipeline.vetoes import reasons_by_id


def random_seed(base_seed: int, ctx: SelectionContext) -> int:
    """64-bit seed from the base seed and the window key (index, train start, cut-off bar and date,
    feature lookback)."""
    w = ctx.view.window
    key = (f"{int(base_seed)}|random|{w.index}|{w.train_start}|{w.cutoff}|"
           f"{ctx.view.cutoff_date.isoformat()}|{ctx.config.feature_lookback}")
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")


def _baseline(ctx: SelectionContext, engine: str, ids: list[str], extra_reason: str | None,
              parts: ResultParts | None = None) -> SelectionResult:
    labels = ctx.clusters.labels
    tables = None
    if parts is not None:  # the atoms' tables over every partitioned candidate, shared by the baselines
        if parts.atom_tables is None:
            parts.atom_tables = atom_tables(labels.index.tolist(), ctx.raw_pool, labels,
                                            ctx.inference_outputs.scores)
        tables = parts.atom_tables
    atoms = make_atoms(ids, ctx.raw_pool, labels, ctx.inference_outputs.scores, None, tables)
    reasons = dict(reasons_by_id(ctx.vetoes))
    if extra_reason:
        chosen = set(ids)
        for i in labels.index:
            if i not in chosen:
                reasons[i] = (extra_reason,)
    event = {"stage": "baseline", "event": engine, "data": {"n_atoms": len(atoms)}}
    return build_result(ctx, engine, SpecVersion.BASELINE, atoms, reasons, None, None,
                        ctx.inference_outputs.champion, [event], parts=parts)


def raw_result(ctx: SelectionContext, parts: ResultParts | None = None) -> SelectionResult:
    """Every candidate without a hard veto (``parts``: ``results.build_result``)."""
    return _baseline(ctx, "raw", sorted(ctx.clusters.labels.index), None, parts)


def random_result(ctx: SelectionContext, n: int, base_seed: int,
                  parts: ResultParts | None = None) -> SelectionResult:
    """``n`` seeded random picks among the candidates without a hard veto (``parts``: as ``raw``)."""
    pool = sorted(ctx.clusters.labels.index)
    k = min(int(n), len(pool))
    rng = np.random.default_rng(random_seed(base_seed, ctx))
    pick = sorted(pool[j] for j in rng.choice(len(pool), size=k, replace=False)) if k else []
    return _baseline(ctx, "random", pick, "random:not_drawn", parts)
