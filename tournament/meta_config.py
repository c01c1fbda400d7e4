"""Configuration of the multi-sleeve meta-portfolio (issue 17): the ``sleeves:`` and ``meta:`` blocks.

A *sleeve* is one strategy configuration (engine x profile, native backend, one simulator) walked forward
on its own market: the run's market (``source: run``) or a second synthetic universe (``source:
synthetic``, a seed and a calendar) or a user's folder (``source: data``). The *meta* layer treats each
sleeve's out-of-sample daily returns as an asset and allocates across them walk-forward
(``tournament.meta``). Both blocks are validated (unknown keys are errors); every default is documented
in its ``Field``.
"""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.enums import Profile, SimulatorKind

#: meta allocators: equal weight, inverse volatility, HRP and long-only minimum variance of the sleeves
META_ALLOCATORS = ("equal_weight", "inverse_vol", "hrp", "min_variance")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SleeveSpec(_Strict):
    """One sleeve: a strategy configuration on its own market.

    ``source``: ``run`` = the run's market (its cell is reused when the run has it: same engine, profile,
    base setting, trial backend, ``simulator``); ``synthetic`` = the embedded synthetic generator with
    ``synthetic_seed`` on ``calendar`` (``exchange``: weekday bars and an ``INDEX`` benchmark); ``data`` =
    a lakehouse folder / wide close file with its ``candidates``. Any sleeve that is not a reused cell is
    walked forward with the run's unit and simulation code. ``asset_types`` / ``exchanges`` / ``sectors``
    keep only the matching candidates of every snapshot (the pool at each cut-off), as the run's own
    market filtered to, e.g., its perpetuals; a sleeve is (``tournament.unit.run_unit``,
    ``simulation.simulate``) on its own market and calendar.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$", description="sleeve name (letters, digits, _ . -)")
    source: Literal["run", "synthetic", "data"] = Field(default="run", description="where its market comes from")
    engine: str = Field(default="v4", description="selection engine (v4, v4:<scorer>, v3.4, raw, random)")
    profile: Profile = Field(default=Profile.EQUAL_WEIGHT, description="allocation profile")
    simulator: SimulatorKind = Field(default=SimulatorKind.VECTORBT, description="simulator of its returns")
    calendar: Optional[Literal["crypto", "exchange"]] = Field(
        default=None, description="synthetic/data sources: crypto (7-day) or exchange (weekdays); None: the "
                                  "run's calendar for synthetic, inferred for data")
    synthetic_seed: int = Field(default=11, description="seed of a synthetic sleeve's market")
    synthetic_candidates: Optional[int] = Field(default=None, ge=20, description="candidate records of a "
                                                "synthetic sleeve's market; None: the run's")
    max_windows: Optional[int] = Field(default=None, ge=1, description="a walked-forward sleeve keeps only its "
                                       "last N windows; None: the run's max_windows")
    data: Optional[str] = Field(default=None, description="source data: lakehouse folder or wide close file")
    candidates: Optional[str] = Field(default=None, description="source data: snapshot folder or export")
    benchmark: Optional[str] = Field(default=None, description="source data: benchmark symbol (synthetic: its own)")
    asset_types: Optional[list[str]] = Field(default=None, description="keep only these snapshot asset_type values "
                                             "(spot, perp, equity) in the sleeve's pool; None: all")
    exchanges: Optional[list[str]] = Field(default=None, description="keep only these snapshot exchanges; None: all")
    sectors: Optional[list[str]] = Field(default=None, description="keep only these snapshot sectors; None: all")

    @property
    def filtered(self) -> bool:
        return any(v is not None for v in (self.asset_types, self.exchanges, self.sectors))

    @model_validator(mode="after")
    def _source(self) -> "SleeveSpec":
        if self.source == "data" and (self.data is None or self.candidates is None):
            raise ValueError(f"sleeve {self.name!r}: source data needs data and candidates")
        if self.source != "data" and (self.data is not None or self.candidates is not None):
            raise ValueError(f"sleeve {self.name!r}: data/candidates only with source: data")
        if self.source == "run" and self.calendar is not None:
            raise ValueError(f"sleeve {self.name!r}: source run takes the run's calendar (drop calendar)")
        return self


class MetaSpec(_Strict):
    """The meta allocator over the sleeves' out-of-sample returns (``tournament.meta``).

    Counted on the meta calendar, the union of the sleeves' calendars (every day on which at least one
    sleeve trades): ``step_size`` days between meta cut-offs, ``train_window`` days of sleeve history
    the allocator reads (rolling), ``min_history`` out-of-sample bars a sleeve needs (realised at or
    before the cut-off) before it gets a weight. ``allocators``: each one is a meta cell (a meta
    configuration, counted as a trial in the meta cells' DSR). ``covariance``: ``sample`` or
    ``ledoit_wolf`` (sklearn's shrinkage) for inverse_vol, hrp and min_variance. Costs: the run's
    ``costs`` apply to the sleeve turnover at each meta rebalance; the run's ``liquidation_floor`` too.
    """

    allocators: list[Literal["equal_weight", "inverse_vol", "hrp", "min_variance"]] = Field(
        default_factory=lambda: ["inverse_vol", "hrp"], min_length=1, description="meta configurations")
    covariance: Literal["sample", "ledoit_wolf"] = Field(default="sample", description="sleeve covariance")
    step_size: int = Field(default=20, ge=2, description="meta-calendar days between meta cut-offs")
    train_window: int = Field(default=120, ge=10, description="meta-calendar days of history read")
    min_history: int = Field(default=40, ge=2, description="OOS bars a sleeve needs before it gets a weight")

    @model_validator(mode="after")
    def _unique(self) -> "MetaSpec":
        if len(set(self.allocators)) != len(self.allocators):
            raise ValueError("meta.allocators repeat")
        return self


def check_sleeves(sleeves: list[SleeveSpec], meta: Optional[MetaSpec]) -> None:
    """Cross-field rules: unique names; a meta block needs two sleeves and vice versa."""
    names = [s.name for s in sleeves]
    if len(set(names)) != len(names):
        raise ValueError(f"sleeve names repeat: {names}")
    if meta is not None and len(sleeves) < 2:
        raise ValueError("meta needs at least two sleeves")
    if sleeves and meta is None:
        raise ValueError("sleeves need a meta block (the allocator across them)")
