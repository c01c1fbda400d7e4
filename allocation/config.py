"""Configuration of the allocation pillar (DESIGN section 4)."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.enums import Profile


class AllocationConfig(BaseModel):
    """Settings of every profile. All weights and caps are fractions of the portfolio (not percent).

    - ``cluster_cap``: nominal cap on the summed weight of one cluster (0.25). The effective cap is
      ``max(cluster_cap, 1/k)`` with ``k`` the number of distinct clusters among the atoms allocated,
      so that the cap is always feasible; it is recorded in ``diagnostics`` and in ``binding``.
    - ``atom_cap``: optional cap on one atom's weight (None = no cap). If it cannot hold together with
      the cluster cap, it is relaxed to the smallest feasible value (recorded in ``relaxed``).
    - ``beta_cap``: market-neutral bound on ``|sum_a w_a beta_a|`` (beta to the benchmark, daily returns).
    - ``long_share_cap`` / ``short_share_cap``: market-neutral caps on the summed weight of the LONG /
      SHORT atoms.
    - ``barbell_core``: share of the Barbell Core sleeve; the Aggressor sleeve takes the rest.
    - ``covariance``: ``ledoit_wolf`` (default) or ``sample``; both then get the correlation ridge.
    - ``fallback_profile``: the profile used when every solver of the chain fails (never a convex one,
      so that the fallback itself cannot fail).
    - ``clarabel_tol``: the tightened Clarabel tolerances (gap abs/rel and feasibility) of the first
      solver of the chain.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    cluster_cap: float = Field(default=0.25, gt=0.0, le=1.0)
    atom_cap: Optional[float] = Field(default=None, gt=0.0, le=1.0)
    beta_cap: float = Field(default=0.05, ge=0.0)
    long_share_cap: float = Field(default=0.6, gt=0.0, le=1.0)
    short_share_cap: float = Field(default=0.6, gt=0.0, le=1.0)
    barbell_core: float = Field(default=0.9, ge=0.0, le=1.0)
    covariance: Literal["ledoit_wolf", "sample"] = "ledoit_wolf"
    fallback_profile: Profile = Profile.EQUAL_WEIGHT
    clarabel_tol: float = Field(default=1e-10, gt=0.0, le=1e-6)

    @model_validator(mode="after")
    def _check(self) -> "AllocationConfig":
        if self.fallback_profile not in (Profile.EQUAL_WEIGHT, Profile.HRP):
            raise ValueError(
                f"fallback_profile {self.fallback_profile.value!r} must be equal_weight or hrp "
                "(a fallback must not need a solver)"
            )
        return self
