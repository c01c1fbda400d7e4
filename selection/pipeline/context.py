"""The selection context, the stage protocol and the small value types stages pass along.

``SelectionContext`` is immutable: a stage returns ``ctx.model_copy(update=...)`` with only the
fields it declares in ``writes``. The orchestrator re-validates the context at every transition
(types and cross-field consistency) and checks declared reads and writes (``orchestrator.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, InstanceOf, model_validator

from contracts.atom import StrategyAtom
from contracts.errors import ToolkitError
from market.entropy import EntropyNullCache
from market.view import PastView
from selection.config import SelectionConfig


class StageContractError(ToolkitError):
    """A stage broke the stage protocol (missing read, undeclared write, invalid field)."""


@dataclass(frozen=True)
class InferenceOutputs:
    """Scores per scorer: ``scores`` (candidate id x scorer name, alpha in [0, 1]) and ``roles``
    (scorer name -> ``champion`` or ``challenger``), plus per-scorer diagnostics."""

    scores: pd.DataFrame
    roles: dict[str, str]
    diagnostics: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def champion(self) -> str:
        return next(k for k, v in self.roles.items() if v == "champion")


def positions(index: pd.Index, ids: list) -> np.ndarray:
    """Row positions of ``ids`` in the unique ``index`` (what ``frame.loc[ids]`` selects), without
    building the selected frame; ``KeyError`` naming the ids that are missing.

    The positions are ``index.get_indexer(ids)``'s, looked up in a dict of the index's values
    (equal keys hash alike, so a unique index maps each id to the same position; ~3x faster than
    ``get_indexer`` on these 100-300 candidate ids, which converts ``ids`` to an Index first); a
    non-unique index goes to ``get_indexer`` (which refuses it)."""
    if index.is_unique and not isinstance(ids, (pd.Index, np.ndarray)):
        where = dict(zip(index.tolist(), range(len(index))))
        pos = np.fromiter((where.get(i, -1) for i in ids), dtype=np.intp, count=len(ids))
    else:
        pos = index.get_indexer(ids)
    if (pos < 0).any():
        missing = [i for i, p in zip(ids, pos.tolist()) if p < 0]
        raise KeyError(f"ids {missing[:5]} not in the index")
    return pos


@dataclass(frozen=True)
class Partition:
    """Clusters of the candidates without a hard veto.

    ``labels``: candidate id -> cluster (0-based; cluster 0 holds the smallest id, and so on);
    ``linkage``: scipy's Ward linkage matrix over ``order`` (ids sorted), None with < 2 candidates;
    ``density``: mean intra-cluster correlation (None when no cluster has two members).
    """

    labels: pd.Series
    linkage: Optional[np.ndarray]
    order: list[str]
    density: Optional[float]
    used_maxclust: bool
    shrinkage: float

    @property
    def sizes(self) -> dict[int, int]:
        keys, counts = np.unique(self.labels.to_numpy(), return_counts=True)
        return {int(k): int(v) for k, v in zip(keys.tolist(), counts.tolist())}


@dataclass(frozen=True)
class PolicyOutcome:
    """One scorer's HTR result so far.

    ``winners``: ids in final order (score desc, id asc); ``forced``: representatives forced at
    k >= 3; ``stage``: last stage run; ``first_stage``: winner id -> the first stage whose pass
    recruited it (a winner recruited at stage 1, outranked at stage 2 and re-added at stage 4 keeps
    1); ``recruited``: every id any pass recruited -> the first such stage (carried across passes);
    ``reasons``: id -> veto reasons (and policy drop reasons) at the last stage; ``passes``: number
    of winners per stage run.
    """

    scorer: str
    stage: int
    winners: tuple[str, ...]
    forced: frozenset[str]
    first_stage: dict[str, int]
    reasons: dict[str, tuple[str, ...]]
    passes: dict[int, int]
    notes: tuple[str, ...] = ()
    recruited: dict[str, int] = field(default_factory=dict)


class SelectionContext(BaseModel):
    """Everything one window's selection knows, stage by stage (SELECTION_SPEC section 7).

    ``view`` and ``config`` are the inputs; ``raw_pool`` (DataFrame indexed by candidate id),
    ``returns`` (train slice of direction-adjusted returns, bars x candidate ids),
    ``feature_store`` (candidate id x feature), ``vetoes`` (hard-veto table: candidate id x reason,
    bool, with ``attrs['kinds']``), ``inference_outputs``, ``clusters`` (``Partition``), ``winners``
    (scorer -> ``PolicyOutcome``), ``atoms`` (scorer -> the synthesised atoms), ``params`` (thresholds, hardening, shrinkage, dropped records)
    and ``audit_trail`` (the ``{stage, event, data}`` events).
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    view: InstanceOf[PastView]
    config: SelectionConfig
    null_cache: InstanceOf[EntropyNullCache]
    raw_pool: Optional[pd.DataFrame] = None
    returns: Optional[pd.DataFrame] = None
    feature_store: Optional[pd.DataFrame] = None
    vetoes: Optional[pd.DataFrame] = None
    inference_outputs: Optional[InferenceOutputs] = None
    clusters: Optional[Partition] = None
    winners: dict[str, PolicyOutcome] = {}
    atoms: dict[str, tuple[StrategyAtom, ...]] = {}
    params: dict[str, Any] = {}
    audit_trail: tuple[dict[str, Any], ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> "SelectionContext":
        ids = None if self.raw_pool is None else self.raw_pool.index
        if ids is not None and not ids.is_unique:
            raise ValueError("raw_pool: candidate ids are not unique")
        for name in ("returns", "feature_store", "vetoes"):
            obj = getattr(self, name)
            if obj is None:
                continue
            if ids is None:
                raise ValueError(f"{name} is set but raw_pool is not")
            got = obj.columns if name == "returns" else obj.index
            if not got.equals(ids):
                raise ValueError(f"{name}: candidate ids do not match raw_pool's")
        if self.feature_store is not None and len(self.feature_store.columns):
            fs = self.feature_store
            # an all-float64 store (the pipeline's) is read in place; otherwise its numeric columns
            num = (fs.to_numpy(dtype=np.float64) if all(t == np.float64 for t in fs.dtypes)
                   else fs.select_dtypes(include=[np.number]).to_numpy(dtype=np.float64))
            if np.isinf(num).any():
                raise ValueError("feature_store: infinite values (a non-finite feature must be NaN)")
        if self.inference_outputs is not None:
            sc = self.inference_outputs.scores
            if ids is None or not sc.index.equals(ids):
                raise ValueError("inference_outputs: candidate ids do not match raw_pool's")
            if list(self.inference_outputs.roles.values()).count("champion") != 1:
                raise ValueError("inference_outputs: exactly one champion scorer is required")
            a = sc.to_numpy(dtype=np.float64)
            if a.size and (not np.isfinite(a).all() or a.min() < 0 or a.max() > 1):
                raise ValueError("inference_outputs: scores must be finite and in [0, 1]")
        if self.clusters is not None and ids is not None:
            extra = set(self.clusters.labels.index.tolist()) - set(ids.tolist())
            if extra:
                raise ValueError(f"clusters: ids not in raw_pool: {sorted(extra)[:3]}")
        for name, out in self.winners.items():
            if not isinstance(out, PolicyOutcome):
                raise ValueError(f"winners[{name}] is not a PolicyOutcome")
            if self.clusters is not None and not set(out.winners) <= set(self.clusters.labels.index.tolist()):
                raise ValueError(f"winners[{name}]: a winner is outside the partition")
        return self

    def event(self, stage: str, event: str, data: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        """The audit trail with one more ``{stage, event, data}`` event (a new tuple)."""
        return self.audit_trail + ({"stage": stage, "event": event, "data": data},)


@runtime_checkable
class Stage(Protocol):
    """A v4 stage: configuration only; ``__call__(ctx) -> ctx`` writes only ``writes``."""

    name: ClassVar[str]
    reads: ClassVar[tuple[str, ...]]
    writes: ClassVar[tuple[str, ...]]

    def __call__(self, ctx: SelectionContext) -> SelectionContext: ...
