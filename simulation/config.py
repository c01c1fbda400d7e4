"""Simulation configuration and the plans the tournament hands to the simulators."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.atom import StrategyAtom
from contracts.errors import ConfigError
from contracts.window import Window

WEIGHT_TOL = 1e-9  # float slack on "weights sum to at most 1"


class SimulationConfig(BaseModel):
    """Settings of both simulators.

    - ``fees``, ``slippage``: fractions of traded notional. Slippage moves the execution price against
      the trade (buy at ``close * (1 + slippage)``, sell at ``close * (1 - slippage)``); fees are charged
      on the executed notional (``fees * |units| * executed price``), as vectorbt does.
    - ``liquidation_floor``: drawdown from the high-water mark (initial capital 1.0 included) at which a
      cell is liquidated; -1.0 means equity at zero, -0.5 means half the peak lost. Fraction, < 0.
    - ``periods_per_year``: bars per year of the calendar (365 crypto, 252 exchange-traded).
    - ``gap``: bars between a cut-off and its fill; must equal every window's gap. Gates use it too.
    - ``max_chunk_bytes``: memory budget of one batched simulation call (cells are chunked under it).
    - ``credit_line``: vectorbt only, units of a zero-rate credit line per cell (see ``vbt_adapter``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    fees: float = Field(default=0.0005, ge=0.0, lt=1.0)
    slippage: float = Field(default=0.0005, ge=0.0, lt=1.0)
    liquidation_floor: float = Field(default=-1.0, ge=-1.0, lt=0.0)
    periods_per_year: int = Field(default=365, ge=1)
    gap: int = Field(default=1, ge=0)
    max_chunk_bytes: int = Field(default=512 * 2**20, ge=2**20)
    credit_line: float = Field(default=64.0, gt=0.0)


class WindowPlan(BaseModel):
    """One window of one cell: its atoms and target weights (fractions of portfolio value, >= 0).

    Empty ``weights`` means the window is held in cash. Atoms absent from ``weights`` get weight 0.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: Window
    atoms: list[StrategyAtom]
    weights: dict[str, float]

    @model_validator(mode="after")
    def _check(self) -> "WindowPlan":
        ids = [a.id for a in self.atoms]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"window {self.window.index}: duplicate atom ids in {ids}")
        unknown = sorted(set(self.weights) - set(ids))
        if unknown:
            raise ConfigError(f"window {self.window.index}: weights for unknown atoms {unknown}")
        for k, w in self.weights.items():
            if not (w >= 0.0) or w == float("inf"):
                raise ConfigError(f"window {self.window.index}: weight of {k!r} is {w!r}, must be >= 0")
        total = sum(self.weights.values())
        if total > 1.0 + WEIGHT_TOL:
            raise ConfigError(f"window {self.window.index}: weights sum to {total!r} > 1")
        return self


class CellPlan(BaseModel):
    """All windows of one cell, in order, with contiguous test slices."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cell_id: str
    windows: list[WindowPlan]

    @model_validator(mode="after")
    def _check(self) -> "CellPlan":
        if not self.windows:
            raise ConfigError(f"cell {self.cell_id}: no windows")
        for a, b in zip(self.windows, self.windows[1:]):
            wa, wb = a.window, b.window
            if wb.cutoff != wa.cutoff + wa.n_test:
                raise ConfigError(f"cell {self.cell_id}: window {wb.index} cut-off {wb.cutoff} does not "
                                  f"follow window {wa.index} (cut-off {wa.cutoff} + {wa.n_test} test bars)")
        return self

    @property
    def start_bar(self) -> int:
        """Cut-off of the first window: the portfolio is 1.0 in cash at its close."""
        return self.windows[0].window.cutoff

    @property
    def end_bar(self) -> int:
        """Last test bar (inclusive)."""
        return self.windows[-1].window.test_end
