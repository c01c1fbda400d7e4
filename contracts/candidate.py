"""One scanner record (DESIGN section 3, "Candidate").

Pools are handled as DataFrames with ``CANDIDATE_COLUMNS`` (vectorised selection); ``Candidate`` is the
per-record contract used to validate snapshot files and to document the fields.
"""
from __future__ import annotations

import math
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.enums import AssetType, Direction, Logic

#: DataFrame columns of a candidate pool, in order. The scanner's dotted names are kept.
CANDIDATE_COLUMNS: tuple[str, ...] = (
    "symbol", "exchange", "asset_type", "sector", "logic", "direction", "Value.Traded",
    "Recommend.All", "Recommend.MA", "ROC", "Volatility.D", "ADX", "snapshot_date",
)


class Candidate(BaseModel):
    """A scanner record.

    Units: ``Value.Traded`` in quote currency (USD) over 24 h; ``Recommend.*`` in [-1, 1] (TradingView
    technical rating, raw, not direction-adjusted); ``ROC`` in percent; ``Volatility.D`` in percent
    (daily range); ``ADX`` in points (0-100). Metadata fields may be missing: the policy then vetoes the
    candidate (hard veto ``metadata``) rather than the loader rejecting the record.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    symbol: str = Field(min_length=1)
    exchange: Optional[str] = None
    asset_type: Optional[AssetType] = None
    sector: Optional[str] = None
    logic: Logic
    direction: Optional[Direction] = None
    value_traded: Optional[float] = Field(default=None, alias="Value.Traded")
    recommend_all: Optional[float] = Field(default=None, alias="Recommend.All")
    recommend_ma: Optional[float] = Field(default=None, alias="Recommend.MA")
    roc: Optional[float] = Field(default=None, alias="ROC")
    volatility_d: Optional[float] = Field(default=None, alias="Volatility.D")
    adx: Optional[float] = Field(default=None, alias="ADX")

    @field_validator("value_traded", "recommend_all", "recommend_ma", "roc", "volatility_d", "adx")
    @classmethod
    def _finite(cls, v: Optional[float]) -> Optional[float]:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be finite or missing")
        return v

    @field_validator("value_traded")
    @classmethod
    def _non_negative(cls, v: Optional[float]) -> Optional[float]:
        if v is not None and v < 0:
            raise ValueError(f"traded value {v} is negative")
        return v

    @field_validator("recommend_all", "recommend_ma")
    @classmethod
    def _rating_range(cls, v: Optional[float]) -> Optional[float]:
        if v is not None and not -1.0 <= v <= 1.0:
            raise ValueError(f"rating {v} outside [-1, 1]")
        return v

    def as_row(self) -> dict:
        """The record as a pool row (``CANDIDATE_COLUMNS`` minus ``snapshot_date``)."""
        return {
            "symbol": self.symbol, "exchange": self.exchange,
            "asset_type": self.asset_type.value if self.asset_type else None,
            "sector": self.sector, "logic": self.logic.value,
            "direction": self.direction.value if self.direction else None,
            "Value.Traded": self.value_traded, "Recommend.All": self.recommend_all,
            "Recommend.MA": self.recommend_ma, "ROC": self.roc, "Volatility.D": self.volatility_d,
            "ADX": self.adx,
        }
