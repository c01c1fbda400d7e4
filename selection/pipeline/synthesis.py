"""Stage 6, Synthesis (``StrategySynthesizer``): SELECTION_SPEC section 6.

One ``contracts.StrategyAtom`` per winner of each scorer: id ``{identity}_{logic}_{direction}``
(the candidate id), the physical ``symbol`` as a field, identity, direction, logic, cluster, sector,
conviction per scorer (every scorer's alpha) and ``htr_stage`` = the first HTR stage whose pass
recruited it (within the stages run). Gates and return streams are ``market.gates``'.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from contracts.atom import StrategyAtom
from contracts.enums import Direction, Logic
from selection.pipeline.context import SelectionContext, positions


def atom_tables(ids: list[str], pool: pd.DataFrame, labels: pd.Series, scores: pd.DataFrame) -> tuple:
    """What ``make_atoms`` reads of ``ids``, read column-wise once: the pool's symbol, identity,
    direction, logic and sector, the cluster and the score row of each id (the same values as
    ``pool.loc[i]``, ``labels[i]`` and ``scores.loc[i]`` per atom, without a row look-up each; only
    the rows of ``ids``, by position: ``positions`` raises KeyError for a missing id, as the
    look-ups did). Tables of a superset of the ids hold the same values for each id (one element
    each), so the baselines of a window share one table over its partitioned candidates."""
    pos = positions(pool.index, ids)
    cols = {c: dict(zip(ids, pool[c].take(pos).tolist()))
            for c in ("symbol", "identity", "direction", "logic", "sector")}
    cluster = dict(zip(ids, labels.to_numpy()[positions(labels.index, ids)].tolist()))
    names = [str(s) for s in scores.columns]
    score_rows = (dict(zip(ids, scores.to_numpy(dtype=np.float64)[positions(scores.index, ids)].tolist()))
                  if len(names) else {})
    return cols, cluster, names, score_rows


def make_atoms(ids: list[str], pool: pd.DataFrame, labels: pd.Series, scores: pd.DataFrame,
               stages: dict[str, int] | None, tables: tuple | None = None) -> tuple[StrategyAtom, ...]:
    """Atoms for ``ids`` in the given order; ``stages`` None (baselines) leaves ``htr_stage`` None.
    ``tables``: ``atom_tables`` of a superset of ``ids`` (computed here for ``ids`` when None or
    when it lacks one of them)."""
    out = []
    if not ids:
        return ()
    if tables is None or any(i not in tables[1] for i in ids):
        tables = atom_tables(ids, pool, labels, scores)
    cols, cluster, names, score_rows = tables
    for i in ids:
        out.append(StrategyAtom(
            id=i, symbol=str(cols["symbol"][i]), identity=str(cols["identity"][i]),
            direction=Direction(cols["direction"][i]), logic=Logic(cols["logic"][i]),
            cluster=int(cluster[i]), sector=str(cols["sector"][i]),
            conviction=dict(zip(names, score_rows[i])) if names else {},
            htr_stage=None if stages is None else int(stages[i])))
    return tuple(out)


@dataclass(frozen=True)
class StrategySynthesizer:
    """Synthesis: winners of every scorer -> ``atoms`` (scorer -> tuple of StrategyAtom)."""

    name: ClassVar[str] = "synthesis"
    reads: ClassVar[tuple[str, ...]] = ("raw_pool", "clusters", "inference_outputs", "winners")
    writes: ClassVar[tuple[str, ...]] = ("atoms", "audit_trail")

    def __call__(self, ctx: SelectionContext) -> SelectionContext:
        atoms = {}
        trail = ctx.audit_trail
        for scorer, out in ctx.winners.items():
            atoms[scorer] = make_atoms(list(out.winners), ctx.raw_pool, ctx.clusters.labels,
                                       ctx.inference_outputs.scores, out.first_stage)
            trail = trail + ({"stage": self.name, "event": "atoms",
                              "data": {"scorer": scorer, "n_atoms": len(atoms[scorer]),
                                       "htr_stage": out.stage}},)
        return ctx.model_copy(update={"atoms": atoms, "audit_trail": trail})
