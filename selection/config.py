"""Selection configuration (SELECTION_SPEC; every default of the spec is a field here).

Units: liquidity floors in USD of 24 h traded value; ``ROC`` and ``Volatility.D`` limits in percent
(as the scanner reports them); ``max_volatility`` is an annualised volatility as a fraction (2.5 =
250 %); entropy thresholds are noise percentiles (0..1); ``adx_min`` in ADX points.

The five settings in which the frozen v3.4 policy differs from v4 (SELECTION_SPEC section 8) are
``sector_cap``, ``tail_vetoes``, ``hardening``, ``top_n_floor`` and ``max_winners``;
``SelectionConfig.v34_settings()`` returns a copy with v3.4's values.
"""
from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Log-MPS components: feature-store column -> (probability mapping, default weight). The order of
#: this table is the summation order of the log-probabilities (left column of the spec's table, then
#: the right column), so that an engine summing in the same order is bit-identical.
LOGMPS_COMPONENTS: dict[str, tuple[str, float]] = {
    "momentum": ("rank", 1.7469),
    "stability": ("rank", 0.0458),
    "liquidity": ("cdf", 0.2946),
    "antifragility": ("rank", 0.6263),
    "survival": ("cdf", 1.4000),
    "efficiency": ("cdf", 1.5348),
    "entropy": ("rank_desc", 0.0322),
    "cvar": ("cdf", 1.0),
    "hurst_clean": ("rank", 0.3485),
    "ADX": ("cdf", 1.0),
    "Recommend.All": ("rank", 1.0),
    "Recommend.MA": ("rank", 1.0),
    "ROC": ("rank", 0.5),
    "Volatility.D": ("rank_desc", 0.5),
    "skew": ("rank", 0.5),
    "kurtosis": ("rank_desc", 0.5),
}

#: Price features the ridge challenger learns from (all computed from returns alone, so that they
#: can be recomputed on sub-windows of the train slice).
RIDGE_FEATURES: tuple[str, ...] = (
    "momentum", "stability", "efficiency", "hurst_clean", "skew", "kurtosis", "cvar", "tail_gain",
)


class RidgeConfig(BaseModel):
    """Cross-sectional ridge challenger (``v4:ridge``), fitted on its own history before the cut-off.

    The fit reads the last ``history`` bars up to the cut-off (fewer when the panel starts later),
    independently of the allocation ``train_window``: the train slice of a short-window setting
    (e.g. 60 bars) is too short for even one sub-window, and an unfitted challenger would recruit
    by candidate id. Past-only either way (DESIGN section 1: a decision may read any earlier bar;
    the features and scores it ranks at the cut-off are still the train slice's).

    Sub-window ``j`` (0-based) ends at ``b_j = c - horizon * (j + 1)``, with ``c = T - 1`` the
    cut-off's row in those T rows; features are computed on rows
    ``[max(0, b_j - feature_lookback), b_j)``, the target is the direction-adjusted compounded return
    over rows ``[b_j, b_j + horizon)``, so ``b_j + horizon <= c``: the fit reads only bars strictly
    before the cut-off. ``alpha`` is the ridge penalty per observation. With fewer than
    ``len(features) + 2`` training rows the challenger is unfitted and its selection is marked
    ``degenerate`` (ledger warning, excluded from the trials and verdicts).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    history: int = Field(default=504, ge=2, description="bars up to the cut-off the fit reads")
    horizon: int = Field(default=20, ge=1, description="forward-return horizon, bars")
    n_windows: int = Field(default=4, ge=1, description="number of training sub-windows")
    alpha: float = Field(default=1.0, ge=0.0, description="ridge penalty per observation")
    min_bars: int = Field(default=40, ge=10, description="minimum feature bars of a sub-window")
    features: tuple[str, ...] = RIDGE_FEATURES


class SelectionConfig(BaseModel):
    """Every setting of the v4 selection pipeline, with the spec's defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # features
    feature_lookback: int = Field(default=120, ge=2, description="L, bars of the train slice used")
    # the five named policy settings (section 8)
    sector_cap: Optional[float] = Field(default=0.40, gt=0.0, le=1.0,
                                        description="max share of winners per sector; None = off")
    tail_vetoes: bool = Field(default=True, description="kurtosis/volatility/ROC/Volatility.D vetoes")
    hardening: bool = Field(default=True, description="entropy-aware hardening, once per window")
    top_n_floor: Optional[int] = Field(default=None, ge=1,
                                       description="per cluster and direction take max(floor, top_n)")
    max_winners: Optional[int] = Field(default=25, ge=1, description="final cap; None = no cap")
    # recruitment
    top_n: int = Field(default=3, ge=1, description="recruits per cluster and direction")
    min_winners: int = Field(default=15, ge=1, description="HTR stops at the first stage with this many")
    # soft vetoes (stage-1 thresholds)
    sentiment_min: float = Field(default=0.1, description="d * Recommend.All must exceed this")
    entropy_max: float = Field(default=0.90, gt=0.0, le=1.0, description="entropy percentile ceiling")
    efficiency_min: float = Field(default=0.05, ge=0.0, description="Kaufman efficiency floor")
    adx_min: float = Field(default=10.0, ge=0.0, description="ADX floor, points")
    # HTR relaxation (stage >= 2)
    relax_entropy: float = Field(default=1.2, ge=1.0, description="entropy_max x this, capped at 1")
    relax_efficiency: float = Field(default=0.8, gt=0.0, le=1.0)
    relax_adx: float = Field(default=0.8, gt=0.0, le=1.0)
    # hard vetoes
    liquidity_floor_perp: float = Field(default=50e6, ge=0.0, description="USD, perpetuals")
    liquidity_floor_other: float = Field(default=20e6, ge=0.0, description="USD, spot and others")
    min_history_bars: int = Field(default=60, ge=1, description="min(this, train bars) valid closes")
    min_survival: float = Field(default=0.1, ge=0.0, le=1.0)
    max_kurtosis: float = Field(default=20.0, description="excess kurtosis ceiling")
    max_volatility: float = Field(default=2.5, gt=0.0, description="annualised, fraction")
    roc_max: float = Field(default=100.0, description="raw ROC ceiling, percent")
    roc_min: float = Field(default=-80.0, description="raw ROC floor, percent")
    volatility_d_max: float = Field(default=100.0, description="Volatility.D ceiling, percent")
    # ingestion
    depth_cap: int = Field(default=100, ge=1, description="max candidates per (logic, direction)")
    # hardening
    hardening_entropy_factor: float = Field(default=0.9, gt=0.0, le=1.0)
    hardening_z: float = Field(default=1.645, gt=0.0, description="one-sided 5% critical z")
    default_shrinkage_intensity: float = Field(default=0.01, ge=0.0, le=1.0)
    hardened_shrinkage_intensity: float = Field(default=0.05, ge=0.0, le=1.0)
    # partitioning
    corr_lookbacks: tuple[int, ...] = Field(default=(60, 120, 200), min_length=1)
    min_common_obs: int = Field(default=20, ge=2)
    cluster_cut: float = Field(default=0.7, gt=0.0)
    max_clusters: int = Field(default=25, ge=1)
    # scoring
    weights: dict[str, float] = Field(
        default_factory=lambda: {k: w for k, (_, w) in LOGMPS_COMPONENTS.items()})
    dominant_signal: Optional[str] = Field(default=None, description="component weighted 3.0")
    challengers: tuple[str, ...] = Field(default=("ridge",), description="challenger scorer names")
    ridge: RidgeConfig = Field(default_factory=RidgeConfig)

    @model_validator(mode="after")
    def _check(self) -> "SelectionConfig":
        unknown = set(self.weights) - set(LOGMPS_COMPONENTS)
        if unknown:
            raise ValueError(f"weights: unknown Log-MPS components {sorted(unknown)}")
        if self.dominant_signal is not None and self.dominant_signal not in LOGMPS_COMPONENTS:
            raise ValueError(f"dominant_signal {self.dominant_signal!r} is not a Log-MPS component")
        if self.roc_min >= self.roc_max:
            raise ValueError("roc_min must be below roc_max")
        return self

    def effective_weights(self) -> dict[str, float]:
        """Weights after ``dominant_signal``: that one 3.0, momentum 0.5 unless it is momentum."""
        w = {k: float(self.weights.get(k, 0.0)) for k in LOGMPS_COMPONENTS}
        if self.dominant_signal is not None:
            w[self.dominant_signal] = 3.0
            if self.dominant_signal != "momentum":
                w["momentum"] = 0.5
        return w

    def effective_top_n(self) -> int:
        return self.top_n if self.top_n_floor is None else max(self.top_n_floor, self.top_n)

    def v34_settings(self) -> "SelectionConfig":
        """A copy with the v3.4 values of the five named settings (SELECTION_SPEC section 8)."""
        return self.model_copy(update={"sector_cap": None, "tail_vetoes": False, "hardening": False,
                                       "top_n_floor": 5, "max_winners": None})


class SelectionSettings(SelectionConfig):
    """The tournament YAML's ``selection:`` block: every ``SelectionConfig`` field except
    ``feature_lookback``, which is a tournament dimension (``base.feature_lookback`` and
    ``sweeps.feature_lookback``) and is refused here. Unknown keys are errors (``extra="forbid"``).

    It reaches v4, every challenger (``v4:<scorer>``) and the baselines (``raw`` and ``random`` share
    v4's ingestion, hard vetoes and partitioning); the frozen v3.4 engine keeps its own constants
    (``selection.registry.legacy_config``).
    """

    feature_lookback: int = Field(default=120, ge=2, exclude=True,
                                  description="not settable here: the tournament's swept lookback")

    @model_validator(mode="before")
    @classmethod
    def _no_lookback(cls, data):
        if isinstance(data, dict) and "feature_lookback" in data:
            raise ValueError("feature_lookback is a tournament setting: set base.feature_lookback "
                             "or sweeps.feature_lookback, not selection.feature_lookback")
        return data

    def for_lookback(self, feature_lookback: int) -> SelectionConfig:
        """The ``SelectionConfig`` of one sweep setting."""
        return SelectionConfig.model_validate({**self.model_dump(), "feature_lookback": feature_lookback})
