"""Tournament cell keys and sweep-setting keys, with short stable ids."""
from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field

from contracts.enums import Backend, Profile, SimulatorKind


def _short_id(payload: dict, prefix: str) -> str:
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return f"{prefix}{hashlib.sha256(blob).hexdigest()[:10]}"


class SettingKey(BaseModel):
    """One sweep setting: the temporal parameters that fix the windows and the features."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step_size: int = Field(ge=1)
    train_window: int = Field(ge=2)
    feature_lookback: int = Field(ge=2)

    @property
    def id(self) -> str:
        """Readable and stable, e.g. ``s20_t252_l120``."""
        return f"s{self.step_size}_t{self.train_window}_l{self.feature_lookback}"


class CellKey(BaseModel):
    """One tournament cell: engine x profile x backend x simulator x sweep setting."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: str
    profile: Profile
    backend: Backend
    simulator: SimulatorKind
    step_size: int = Field(ge=1)
    train_window: int = Field(ge=2)
    feature_lookback: int = Field(ge=2)

    @property
    def setting(self) -> SettingKey:
        return SettingKey(step_size=self.step_size, train_window=self.train_window,
                          feature_lookback=self.feature_lookback)

    def dims(self) -> dict:
        return {"engine": self.engine, "profile": self.profile.value, "backend": self.backend.value,
                "simulator": self.simulator.value, "step_size": self.step_size,
                "train_window": self.train_window, "feature_lookback": self.feature_lookback}

    @property
    def id(self) -> str:
        """Short stable id: ``c`` + first 10 hex of SHA-256 of the canonical JSON of ``dims()``."""
        return _short_id(self.dims(), "c")
