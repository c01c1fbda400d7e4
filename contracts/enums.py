"""Enumerations used across pillars. Strings from config are validated into these at the edge."""
from __future__ import annotations

from enum import Enum


class Direction(str, Enum):
    """Trade direction of a candidate or atom; ``sign`` is d = +1 (LONG) or -1 (SHORT)."""

    LONG = "LONG"
    SHORT = "SHORT"

    @property
    def sign(self) -> int:
        return 1 if self is Direction.LONG else -1


class Logic(str, Enum):
    """Scanner logic of a candidate; it fixes the atom's gate (SELECTION_SPEC section 6)."""

    RATING = "rating"
    TREND = "trend"
    MOM = "mom"
    REV = "rev"


class AssetType(str, Enum):
    SPOT = "spot"
    PERP = "perp"
    EQUITY = "equity"


class Profile(str, Enum):
    """Risk profiles of the allocation pillar (DESIGN section 4)."""

    MIN_VARIANCE = "min_variance"
    HRP = "hrp"
    MAX_SHARPE = "max_sharpe"
    EQUAL_WEIGHT = "equal_weight"
    MARKET_NEUTRAL = "market_neutral"
    BARBELL = "barbell"


class Backend(str, Enum):
    """Optimiser backend (never to be confused with an executor)."""

    RISKFOLIO = "riskfolio"
    NATIVE = "native"


class SimulatorKind(str, Enum):
    VECTORBT = "vectorbt"
    REFERENCE = "reference"


class ExecutorKind(str, Enum):
    SERIAL = "serial"
    PROCESS = "process"
    DASK = "dask"


class SpecVersion(str, Enum):
    """``spec_version`` carried by every ledger record (DESIGN section 4)."""

    V4 = "4.0-mlops"
    V34 = "3.4"
    BASELINE = "baseline"
    RUN = "run"


class RecordType(str, Enum):
    """Ledger record types."""

    RUN_START = "run_start"
    WINDOW = "window"
    SELECTION = "selection"
    ALLOCATION = "allocation"
    SIMULATION = "simulation"
    CHECK = "check"
    RESUME = "resume"
    RUN_END = "run_end"
    WARNING = "warning"
    ARTIFACT = "artifact"
