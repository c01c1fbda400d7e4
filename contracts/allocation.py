"""Allocation: what an allocation profile returns, and what it is given."""
from __future__ import annotations

import math
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.atom import StrategyAtom
from contracts.enums import Backend, Profile

#: Weights are checked against these tolerances (solver outputs are cleaned to them by the engines).
WEIGHT_SUM_TOL = 1e-8
WEIGHT_NEG_TOL = 1e-10


class Allocation(BaseModel):
    """Non-negative weights over atom ids summing to 1 (SHORT atoms carry the short side).

    An empty ``weights`` means the window holds cash (no atom to allocate); ``status`` then says why.
    ``status`` is one of ``optimal``, ``optimal_inaccurate``, ``fallback``, ``relaxed``, ``empty``.
    ``binding`` lists the constraints that bind at the solution (e.g. ``cluster_cap:3``), ``relaxed``
    those that were relaxed to make the problem feasible, with the relaxed value (for the Barbell,
    ``barbell_core_share``: the realised Core share when the caps could not hold the target split).
    Any profile whose constraints or targets were relaxed reports ``relaxed``, never ``optimal``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    profile: Profile
    backend: Backend
    weights: dict[str, float]
    solver: Optional[str] = None
    status: str = "optimal"
    fallback_used: bool = False
    reason: Optional[str] = None
    binding: list[str] = Field(default_factory=list)
    relaxed: dict[str, float] = Field(default_factory=dict)
    diagnostics: dict[str, Any] = Field(default_factory=dict, description="objective, ex-ante vol, ...")

    @model_validator(mode="after")
    def _check_weights(self) -> "Allocation":
        for k, w in self.weights.items():
            if not math.isfinite(w):
                raise ValueError(f"weight of {k} is not finite: {w}")
            if w < -WEIGHT_NEG_TOL:
                raise ValueError(f"weight of {k} is negative: {w}")
        if self.weights:
            s = math.fsum(self.weights.values())
            if abs(s - 1.0) > WEIGHT_SUM_TOL:
                raise ValueError(f"weights sum to {s!r}, not 1")
        elif self.status != "empty":
            raise ValueError("an allocation without weights must have status 'empty'")
        return self


class AllocationRequest(BaseModel):
    """Everything an allocation profile may see for one window: train-slice data only.

    - ``atom_returns``: DataFrame (train bars x atom ids) of daily simple returns ``a_t = d g_t r_t``;
    - ``asset_returns``: DataFrame (train bars x physical symbols) of raw daily simple returns;
    - ``benchmark_returns``: Series of the benchmark's raw daily returns on the same bars;
    - ``atoms``: the atoms, in the order of ``atom_returns``' columns;
    - ``shrinkage``: ridge intensity ``s`` for ``(1-s) C + s I`` on the correlation (window manifest);
    - ``periods_per_year``: P of the calendar (365 or 252).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    atoms: list[StrategyAtom]
    atom_returns: Any
    asset_returns: Any
    benchmark_returns: Any = None
    shrinkage: float = Field(default=0.01, ge=0.0, le=1.0)
    periods_per_year: int = Field(default=365, ge=1)

    @model_validator(mode="after")
    def _check(self) -> "AllocationRequest":
        cols = list(getattr(self.atom_returns, "columns", []))
        ids = [a.id for a in self.atoms]
        if cols != ids:
            raise ValueError(f"atom_returns columns {cols[:5]}... do not match the atoms {ids[:5]}...")
        return self

    @property
    def clusters(self) -> dict[str, int]:
        return {a.id: a.cluster for a in self.atoms}
