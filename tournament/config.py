"""Tournament configuration: a YAML file validated by pydantic (unknown keys are errors).

Every default is documented here; presets (``quick``, ``full``, ``large``) are partial configs merged under the
user's file and CLI overrides (precedence: CLI > file > preset > defaults).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contracts.cell import CellKey, SettingKey
from contracts.enums import Backend, ExecutorKind, Profile, SimulatorKind
from contracts.errors import ConfigError
from selection.config import SelectionSettings
from tournament.meta_config import MetaSpec, SleeveSpec, check_sleeves

BASE_ENGINES = ("v4", "v3.4", "raw", "random")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Setting(_Strict):
    """The base temporal setting, in bars."""

    step_size: int = Field(default=20, ge=2, description="bars between cut-offs")
    train_window: int = Field(default=252, ge=30, description="bars in the train slice")
    feature_lookback: int = Field(default=120, ge=20, description="bars used for features")


class Sweeps(_Strict):
    """One-at-a-time sweeps around the base setting (native backend, vectorbt simulator only)."""

    step_size: list[int] = Field(default_factory=list)
    train_window: list[int] = Field(default_factory=list)
    feature_lookback: list[int] = Field(default_factory=list)


class Costs(_Strict):
    fees: float = Field(default=0.0005, ge=0, lt=0.1, description="fraction of traded notional")
    slippage: float = Field(default=0.0005, ge=0, lt=0.1, description="fraction of traded notional")


class Statistics(_Strict):
    n_boot: int = Field(default=1000, ge=50, description="bootstrap replications")
    pbo_blocks: int = Field(default=16, ge=4, description="CSCV blocks S (even)")
    alpha: float = Field(default=0.05, gt=0, lt=0.5, description="two-sided test level, CI 1-alpha")
    dsr_method: str = Field(default="raw", description="headline DSR: raw (trial count, calibrated), "
                            "clustered (correlation clusters; lenient under one dominant factor)")
    cluster_threshold: float = Field(default=0.9, gt=0, lt=1, description="average correlation at which "
                                     "trials merge into one cluster (clustered DSR reading)")
    pbo_null_reps: int = Field(default=30, ge=0, description="block-bootstrap resamples of the demeaned trials "
                               "for PBO's null mean and spread (0: off)")

    @field_validator("dsr_method")
    @classmethod
    def _dsr_method(cls, v: str) -> str:
        if v not in ("raw", "clustered"):
            raise ValueError("dsr_method must be raw or clustered")
        return v


class Bands(_Strict):
    """Volatility bands of the DRIFT flag (annualised fractions; DESIGN section 4).

    ``mode``: ``absolute`` uses ``absolute`` (default: the product's crypto bands, MinVariance 0.35 ...
    MaxSharpe 0.90) and ``drift_threshold`` as given; ``scaled`` multiplies both by ``s = pool equal-weight
    volatility / reference_vol``, the pool's realised volatility over the run's test span relative to the
    product's equal-weight band (0.60): the same risk ordering on a calmer or wilder market; ``auto``
    (default) is ``absolute`` on the crypto calendar and ``scaled`` on the exchange calendar.
    """

    mode: Literal["auto", "absolute", "scaled"] = Field(default="auto")
    absolute: Optional[dict[Profile, tuple[float, float]]] = Field(
        default=None, description="profile -> (low, high) annualised volatility; None: the product's bands")
    drift_threshold: float = Field(default=0.25, gt=0, description="DRIFT when the distance to the band exceeds it")
    reference_vol: float = Field(default=0.60, gt=0, description="the product's equal-weight band (scale 1)")

    @field_validator("absolute")
    @classmethod
    def _ranges(cls, v):
        if v is None:
            return v
        for prof, (lo, hi) in v.items():
            if not (0 < lo <= hi):
                raise ValueError(f"band of {prof.value}: need 0 < low <= high, got ({lo}, {hi})")
        return v


class Regimes(_Strict):
    """Volatility regimes (issue 20; ``market.regimes``): each bar is calm, turbulent or crisis by the
    reference's annualised realised volatility over the ``window`` returns before it, against the
    ``quantiles`` of the earlier bars' volatilities (an expanding window, so no label reads the future).
    The reference is the benchmark (``market.benchmark``), else an equal-weight index of every symbol.
    Per-regime figures with fewer than ``min_days`` days are left blank."""

    window: int = Field(default=20, ge=2, description="returns in the trailing realised volatility, bars")
    quantiles: tuple[float, float] = Field(default=(0.6, 0.9), description="calm/turbulent and "
                                           "turbulent/crisis cut points, quantiles of the earlier volatilities")
    min_history: int = Field(default=60, ge=1, description="earlier volatilities needed before a label")
    min_days: int = Field(default=20, ge=3, description="fewest days of a regime for a cell's figures")

    @field_validator("quantiles")
    @classmethod
    def _cuts(cls, v):
        if not (0.0 < v[0] < v[1] < 1.0):
            raise ValueError(f"need 0 < q1 < q2 < 1, got {list(v)}")
        return v


class DataSpec(_Strict):
    """Where the market comes from: ``None`` folders mean the embedded synthetic market."""

    data: Optional[str] = Field(default=None, description="lakehouse folder or wide close file")
    candidates: Optional[str] = Field(default=None, description="snapshot folder or one undated export")
    calendar: Optional[Literal["crypto", "exchange"]] = Field(
        default=None, description="crypto (365 bars a year) or exchange (252); None: inferred from the data "
                                  "(weekday-only bars -> exchange, else crypto) and recorded")
    benchmark: Optional[str] = Field(default="BTCUSDT", description="benchmark symbol for beta")
    synthetic_seed: int = Field(default=7, description="seed of the synthetic market")
    synthetic_bars: int = Field(default=1461, ge=400, description="bars of the synthetic market")
    synthetic_candidates: int = Field(default=110, ge=20, description="candidate records (synthetic)")
    synthetic_no_signal: bool = Field(default=False, description="synthetic market without signal: martingale "
                                      "prices and snapshots that never read a price (size checks)")

    @model_validator(mode="after")
    def _both(self) -> "DataSpec":
        if (self.data is None) != (self.candidates is None):
            raise ValueError("give both data and candidates, or neither (synthetic market)")
        return self


class TournamentConfig(_Strict):
    """The resolved configuration of a run (written to ``config.yaml``)."""

    preset: str = Field(default="quick")
    seed: int = Field(default=42, description="base seed; every draw derives from it and a unit key")
    market: DataSpec = Field(default_factory=DataSpec)
    engines: list[str] = Field(default_factory=lambda: ["v4", "v4:ridge", "v3.4", "raw", "random"])
    profiles: list[Profile] = Field(default_factory=lambda: list(Profile))
    backends: list[Backend] = Field(default_factory=lambda: [Backend.NATIVE, Backend.RISKFOLIO])
    simulators: list[SimulatorKind] = Field(default_factory=lambda: [SimulatorKind.VECTORBT,
                                                                     SimulatorKind.REFERENCE])
    base: Setting = Field(default_factory=Setting)
    sweeps: Sweeps = Field(default_factory=Sweeps)
    gap: int = Field(default=1, ge=0, description="bars from cut-off to fill")
    train_mode: str = Field(default="rolling", description="rolling or expanding train slice")
    max_windows: Optional[int] = Field(default=None, ge=1, description="keep only the last N windows")
    costs: Costs = Field(default_factory=Costs)
    liquidation_floor: float = Field(default=-1.0, ge=-1.0, lt=0.0, description="drawdown, negative")
    statistics: Statistics = Field(default_factory=Statistics)
    executor: ExecutorKind = Field(default=ExecutorKind.SERIAL)
    workers: int = Field(default=1, ge=1)
    scheduler: Optional[str] = Field(default=None, description="dask scheduler address")
    report: bool = Field(default=True, description="render the report at the end")
    bands: Bands = Field(default_factory=Bands, description="volatility bands of the DRIFT flag")
    verification: str = Field(default="sampled", description=(
        "sampled: the verification backends (riskfolio) allocate a seeded sample of the base setting's "
        "windows, compared window by window with the trial backend; full: they are complete cells"))
    verification_windows: int = Field(default=12, ge=2, description=(
        "sampled: base windows verified in all (the first and last included), plus every window where "
        "the trial backend relaxed, fell back or hit an inaccurate status"))
    regimes: Regimes = Field(default_factory=Regimes, description="volatility regimes of the sensitivity split")
    selection: SelectionSettings = Field(
        default_factory=SelectionSettings,
        description="selection settings of v4, its challengers and the baselines (every "
                    "selection.config.SelectionConfig field but feature_lookback); v3.4 keeps its own")

    # -- issue 17: multi-sleeve meta-portfolio (tournament.meta_config, tournament.meta) --
    sleeves: list[SleeveSpec] = Field(default_factory=list, description="strategy sleeves of the meta-portfolio")
    meta: Optional[MetaSpec] = Field(default=None, description="meta allocator across the sleeves (None: off)")

    @model_validator(mode="after")
    def _challengers(self) -> "TournamentConfig":
        known = set(self.selection.challengers)
        for e in self.engines + [s.engine for s in self.sleeves]:
            if e.startswith("v4:") and e[3:] not in known:
                raise ValueError(f"engine {e!r} needs {e[3:]!r} in selection.challengers "
                                 f"(configured: {sorted(known)})")
        for s in self.sleeves:
            if s.engine not in BASE_ENGINES and not s.engine.startswith("v4:"):
                raise ValueError(f"sleeve {s.name!r}: unknown engine {s.engine!r}")
        check_sleeves(self.sleeves, self.meta)
        return self

    @field_validator("engines")
    @classmethod
    def _engines(cls, v: list[str]) -> list[str]:
        for e in v:
            if e not in BASE_ENGINES and not e.startswith("v4:"):
                raise ValueError(f"unknown engine {e!r}: use v4, v4:<scorer>, v3.4, raw, random")
        if len(set(v)) != len(v):
            raise ValueError("engines repeat")
        return v

    @field_validator("verification")
    @classmethod
    def _verification(cls, v: str) -> str:
        if v not in ("sampled", "full"):
            raise ValueError("verification must be sampled or full")
        return v

    @field_validator("train_mode")
    @classmethod
    def _mode(cls, v: str) -> str:
        if v not in ("rolling", "expanding"):
            raise ValueError("train_mode must be rolling or expanding")
        return v

    @property
    def trial_backend(self) -> Backend:
        return Backend.NATIVE if Backend.NATIVE in self.backends else self.backends[0]

    @property
    def verification_backends(self) -> list[Backend]:
        """The optimiser backends that only verify the trial backend (riskfolio by default)."""
        return [b for b in self.backends if b != self.trial_backend]

    def cell_backends(self, setting_index: int) -> list[Backend]:
        """Backends that are cells at a setting: all at the base setting under ``verification: full``,
        else the trial backend only (sampled verification is a comparison, not a cell)."""
        return list(self.backends) if setting_index == 0 and self.verification == "full" else [self.trial_backend]

    @property
    def trial_simulator(self) -> SimulatorKind:
        return SimulatorKind.VECTORBT if SimulatorKind.VECTORBT in self.simulators else self.simulators[0]

    def settings(self) -> list[SettingKey]:
        """Base setting then the one-at-a-time sweep settings (unique, in that order)."""
        b = self.base
        out = [SettingKey(step_size=b.step_size, train_window=b.train_window, feature_lookback=b.feature_lookback)]
        for name, values in (("step_size", self.sweeps.step_size), ("train_window", self.sweeps.train_window),
                             ("feature_lookback", self.sweeps.feature_lookback)):
            for v in values:
                s = out[0].model_copy(update={name: v})
                if s not in out:
                    out.append(s)
        return out

    def cells(self) -> list[CellKey]:
        """Every cell: at the base setting all engine x profile x backend x simulator; at the sweep
        settings engine x profile on the trial backend and simulator (verification axes run only at
        the base setting). Under ``verification: sampled`` (the default) the verification backends
        are no cells: they verify a sample of windows (``tournament.verification``)."""
        out = []
        settings = self.settings()
        for i, s in enumerate(settings):
            backends = self.cell_backends(i)
            sims = self.simulators if i == 0 else [self.trial_simulator]
            for e in self.engines:
                for p in self.profiles:
                    for bk in backends:
                        for sm in sims:
                            out.append(CellKey(engine=e, profile=p, backend=bk, simulator=sm,
                                               **s.model_dump()))
        return out

    def is_trial(self, cell: CellKey) -> bool:
        """A trial is a strategy configuration on the native backend and the vectorbt simulator."""
        return cell.backend == self.trial_backend and cell.simulator == self.trial_simulator


PRESETS: dict[str, dict[str, Any]] = {
    # a minute or two on 2 cores: base setting only, the last 24 windows of the synthetic market
    # (480 test days: v4 stops at HTR stages 1 and 4 there, v3.4 at each of 1-4; v4 hardens 21 of 24
    # windows; measured after issue 15 made the synthetic scanner past-only)
    "quick": {
        "max_windows": 24,
        "executor": "process",
        "workers": 2,
        "engines": ["v4", "v4:ridge", "v3.4", "raw", "random"],
        "profiles": ["equal_weight", "hrp", "min_variance", "max_sharpe", "market_neutral", "barbell"],
        "backends": ["native", "riskfolio"],
        "simulators": ["vectorbt", "reference"],
        "base": {"step_size": 20, "train_window": 252, "feature_lookback": 120},
        "statistics": {"n_boot": 300},
        # issue 17: a three-sleeve meta-portfolio on two calendars (two sleeves reuse cells of this
        # run on the 7-day crypto market; the third walks v4 forward on a weekday-only synthetic universe)
        "sleeves": [{"name": "crypto_v4_hrp", "source": "run", "engine": "v4", "profile": "hrp"},
                    {"name": "crypto_raw_mv", "source": "run", "engine": "raw", "profile": "min_variance"},
                    # 60 candidates and the last 18 windows (from Aug 2023, as the crypto sleeves' Sep 2023):
                    # 4-5 s of walk-forward on 2 cores instead of 9-10 with the run's 110 and 24
                    {"name": "equities_v4", "source": "synthetic", "calendar": "exchange", "synthetic_seed": 11,
                     "synthetic_candidates": 60, "max_windows": 18, "engine": "v4", "profile": "equal_weight"}],
        "meta": {"allocators": ["inverse_vol", "hrp"], "step_size": 20, "train_window": 120, "min_history": 40},
    },
    "full": {
        "base": {"step_size": 20, "train_window": 252, "feature_lookback": 120},
        "sweeps": {"step_size": [5, 20, 60], "train_window": [60, 252, 504], "feature_lookback": [60, 120, 250]},
    },
    # issue 16 (benchmarks/scale.py): a synthetic market of 1,000 candidate records on 694 symbols over
    # 6 years (2,190 bars), every engine and profile on the native backend (no verification backend) at
    # the base setting plus the step-5 sweep (97 + 388 windows: 485 units)
    "large": {
        "market": {"synthetic_candidates": 1000, "synthetic_bars": 2190},
        "executor": "process",
        "workers": 2,
        "engines": ["v4", "v4:ridge", "v3.4", "raw", "random"],
        "profiles": ["equal_weight", "hrp", "min_variance", "max_sharpe", "market_neutral", "barbell"],
        "backends": ["native"],
        "simulators": ["vectorbt", "reference"],
        "base": {"step_size": 20, "train_window": 252, "feature_lookback": 120},
        "sweeps": {"step_size": [5]},
        "report": False,
    },
}


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(path: str | Path | None = None, preset: str | None = None,
                overrides: dict[str, Any] | None = None) -> TournamentConfig:
    """Resolve preset < file < overrides into a validated ``TournamentConfig``.

    Raises ``ConfigError`` naming the key at fault (unknown keys included).
    """
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: config file not found")
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: invalid YAML ({exc})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{p}: expected a mapping at the top level")
    name = preset or raw.get("preset") or "quick"
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: use {sorted(PRESETS)}")
    merged = _merge(_merge(PRESETS[name], raw), overrides or {})
    merged["preset"] = name
    try:
        return TournamentConfig.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        got = err.get("input")
        shown = f" (got {got!r})" if isinstance(got, (str, int, float, bool)) or got is None else ""
        raise ConfigError(f"config key {loc!r}: {err['msg']}{shown}") from None


def dump_config(cfg: TournamentConfig) -> str:
    """The resolved config as YAML (enums as strings)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
