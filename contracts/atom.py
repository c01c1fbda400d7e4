"""StrategyAtom: one winning (asset, logic, direction) as allocation and simulation see it."""
from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.enums import Direction, Logic


class StrategyAtom(BaseModel):
    """A strategy atom (DESIGN section 3; SELECTION_SPEC section 6).

    ``id`` is ``{identity}_{logic}_{direction}``; the physical ``symbol`` is a field and must never be
    parsed out of the id. Its gate ``g_t`` and return stream ``a_t = d * g_t * r_t`` are computed by
    ``market.gates``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    symbol: str
    identity: str
    direction: Direction
    logic: Logic
    cluster: int = Field(ge=0)
    sector: Optional[str] = None
    conviction: dict[str, float] = Field(default_factory=dict, description="alpha per scorer name")
    htr_stage: Optional[int] = Field(default=None, ge=1, le=4, description="None for baselines")

    @model_validator(mode="after")
    def _check_id(self) -> "StrategyAtom":
        expected = f"{self.identity}_{self.logic.value}_{self.direction.value}"
        if self.id != expected:
            raise ValueError(f"atom id {self.id!r} != {expected!r}")
        return self

    @property
    def sign(self) -> int:
        """d = +1 for LONG, -1 for SHORT."""
        return self.direction.sign

    @staticmethod
    def make_id(identity: str, logic: Logic | str, direction: Direction | str) -> str:
        return f"{identity}_{Logic(logic).value}_{Direction(direction).value}"
