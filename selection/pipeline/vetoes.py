"""Vetoes (SELECTION_SPEC section 5) and the entropy-aware hardening decision.

Vetoes read the feature store (never the score table). Each rule yields a boolean column named by
its reason; a rule whose feature is NaN fires under ``missing:<feature>`` instead (a NaN comparison
never passes silently). Reasons and their kinds:

- hard: ``missing:sector``, ``missing:asset_type``, ``missing:direction``,
  ``missing:Value.Traded`` (metadata), ``history`` (valid train closes < min(60, train bars)),
  ``survival`` (< 0.1), ``liquidity`` (24 h value below the floor of its asset type), and with
  ``tail_vetoes``: ``kurtosis`` (> 20), ``volatility`` (annualised > 2.5), ``roc`` (raw ROC > +100
  or < -80, percent), ``volatility_d`` (> 100, percent), with their ``missing:`` forms;
- soft (thresholds per HTR stage): ``sentiment`` (d * Recommend.All <= 0.1), ``entropy``
  (percentile > entropy_max; ``missing:entropy`` when the raw entropy could not be computed; the
  rule is off when entropy_max >= 1), ``efficiency`` (< efficiency_min), ``adx`` (< adx_min).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from selection.config import SelectionConfig
from selection.pipeline.context import SelectionContext
from selection.pipeline.ingestion import liquidity_floor

HARD = "hard"
SOFT = "soft"
SOFT_REASONS = ("sentiment", "entropy", "efficiency", "adx")


@dataclass(frozen=True)
class Thresholds:
    """Soft-veto thresholds of one HTR stage."""

    stage: int
    sentiment_min: float
    entropy_max: float
    efficiency_min: float
    adx_min: float


def stage_thresholds(config: SelectionConfig, stage: int, entropy_max: float) -> Thresholds:
    """Stage 1: strict; stages >= 2: entropy_max x1.2 (at most 1), efficiency and ADX floors x0.8.
    ``entropy_max`` is the window's (possibly hardened) ceiling; relaxation never compounds."""
    if stage <= 1:
        return Thresholds(stage, config.sentiment_min, entropy_max, config.efficiency_min, config.adx_min)
    return Thresholds(stage, config.sentiment_min, min(1.0, entropy_max * config.relax_entropy),
                      config.efficiency_min * config.relax_efficiency, config.adx_min * config.relax_adx)


def _rule(flags: dict, name: str, feature: str, values: np.ndarray, fires: np.ndarray) -> None:
    nan = np.isnan(values)
    flags[name] = flags.get(name, np.zeros(values.shape, bool)) | (fires & ~nan)
    key = f"missing:{feature}"
    flags[key] = flags.get(key, np.zeros(values.shape, bool)) | nan


def _missing_meta(col: pd.Series) -> np.ndarray:
    """Per row: the value is missing (``isna``) or blank once stripped. Element by element in
    Python for strings (``str.strip``, what ``astype(str).str.strip()`` applies to a string); a
    column holding another type goes through pandas' conversions
    (tests/selection/test_v4_vetoes.py compares with them)."""
    s = col.astype(object)
    na = s.isna().to_numpy()
    vals = s.to_numpy()
    if all(isinstance(v, str) for v, m in zip(vals, na) if not m):
        return na | np.fromiter((not m and v.strip() == "" for v, m in zip(vals, na)), dtype=bool,
                                count=len(vals))
    return (s.isna() | (s.astype(str).str.strip() == "")).to_numpy()


def hard_vetoes(fs: pd.DataFrame, pool: pd.DataFrame, config: SelectionConfig, train_rows: int) -> pd.DataFrame:
    """Hard-veto flags (candidate id x reason, bool); every reason column is present."""
    flags: dict[str, np.ndarray] = {}
    for col in ("sector", "asset_type", "direction"):
        flags[f"missing:{col}"] = _missing_meta(pool[col])
    vt = pool["Value.Traded"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        _rule(flags, "liquidity", "Value.Traded", vt, vt < liquidity_floor(pool["asset_type"], config))
        need = min(config.min_history_bars, train_rows)
        flags["history"] = fs["n_history"].to_numpy() < need
        surv = fs["survival"].to_numpy(dtype=np.float64)
        _rule(flags, "survival", "survival", surv, surv < config.min_survival)
        if config.tail_vetoes:
            k = fs["kurtosis"].to_numpy(dtype=np.float64)
            _rule(flags, "kurtosis", "kurtosis", k, k > config.max_kurtosis)
            v = fs["volatility"].to_numpy(dtype=np.float64)
            _rule(flags, "volatility", "volatility", v, v > config.max_volatility)
            roc = fs["ROC_raw"].to_numpy(dtype=np.float64)
            _rule(flags, "roc", "ROC", roc, (roc > config.roc_max) | (roc < config.roc_min))
            vd = fs["Volatility.D"].to_numpy(dtype=np.float64)
            _rule(flags, "volatility_d", "Volatility.D", vd, vd > config.volatility_d_max)
    return pd.DataFrame(flags, index=fs.index)


def soft_vetoes(fs: pd.DataFrame, th: Thresholds) -> pd.DataFrame:
    """Soft-veto flags at the stage thresholds ``th`` (candidate id x reason, bool)."""
    return pd.DataFrame(soft_veto_flags(fs, th), index=fs.index)


def soft_veto_flags(fs: pd.DataFrame, th: Thresholds) -> dict[str, np.ndarray]:
    """``soft_vetoes``' columns as arrays in the rows of ``fs`` (reason -> bool per row); a row's
    flags read only that row."""
    flags: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore"):
        ra = fs["Recommend.All"].to_numpy(dtype=np.float64)
        _rule(flags, "sentiment", "Recommend.All", ra, ra <= th.sentiment_min)
        if th.entropy_max < 1.0:
            raw = fs["entropy_raw"].to_numpy(dtype=np.float64)
            pct = np.where(np.isnan(raw), np.nan, fs["entropy"].to_numpy(dtype=np.float64))
            _rule(flags, "entropy", "entropy", pct, pct > th.entropy_max)
        eff = fs["efficiency"].to_numpy(dtype=np.float64)
        _rule(flags, "efficiency", "efficiency", eff, eff < th.efficiency_min)
        adx = fs["ADX"].to_numpy(dtype=np.float64)
        _rule(flags, "adx", "ADX", adx, adx < th.adx_min)
    return flags


def veto_evidence(fs: pd.DataFrame, pool: pd.DataFrame, config: SelectionConfig, train_rows: int,
                  th: Thresholds, ids_reasons: dict[str, tuple[str, ...]],
                  columns: dict | None = None) -> dict[str, dict[str, dict]]:
    """For each candidate and each of its veto reasons, the value the rule read and the threshold it
    was held to (soft rules at the thresholds ``th`` of the stage that last saw the candidate):
    ``{id: {reason: {"value", "threshold", "rule"}}}``. ``missing:<feature>`` has value None; reasons
    that are not threshold rules (duplicates, policy drops) are left out.

    ``columns``: a cache of what is read of ``fs`` and ``pool`` (each column by id, the liquidity
    floors), filled here; the results of one window pass the same dict (same ``fs``, ``pool`` and
    ``config``), so each is read once per window."""
    columns = {} if columns is None else columns
    if "__floors__" not in columns:
        columns["__floors__"] = pd.Series(liquidity_floor(pool["asset_type"], config), index=pool.index) \
            if len(pool) else pd.Series(dtype=float)
    floors = columns["__floors__"]
    need = min(config.min_history_bars, train_rows)
    rules = {
        "liquidity": ("Value.Traded", lambda i: floors.get(i), "value < floor (by asset type)"),
        "history": ("n_history", lambda i: need, "valid train closes < threshold"),
        "survival": ("survival", lambda i: config.min_survival, "value < threshold"),
        "kurtosis": ("kurtosis", lambda i: config.max_kurtosis, "value > threshold"),
        "volatility": ("volatility", lambda i: config.max_volatility, "annualised value > threshold"),
        "roc": ("ROC_raw", lambda i: [config.roc_min, config.roc_max], "value outside [low, high] (percent)"),
        "volatility_d": ("Volatility.D", lambda i: config.volatility_d_max, "value > threshold (percent)"),
        "sentiment": ("Recommend.All", lambda i: th.sentiment_min, "direction-adjusted value <= threshold"),
        "entropy": ("entropy", lambda i: th.entropy_max, "percentile > threshold"),
        "efficiency": ("efficiency", lambda i: th.efficiency_min, "value < threshold"),
        "adx": ("ADX", lambda i: th.adx_min, "value < threshold"),
    }
    out: dict[str, dict[str, dict]] = {}
    for cid, reasons in ids_reasons.items():
        ev = {}
        for r in reasons:
            if r.startswith("missing:"):
                ev[r] = {"value": None, "threshold": None, "rule": "field missing or not finite"}
                continue
            if r not in rules:
                continue
            col, thr, rule = rules[r]
            if col not in columns:
                src = pool if col == "Value.Traded" else fs
                # id -> value, as ``src[col].get(id)`` reads it (the ids are unique)
                columns[col] = (dict(zip(src.index.tolist(), src[col].to_numpy()))
                                if col in src.columns else None)
            v = columns[col].get(cid) if columns[col] is not None else None
            ev[r] = {"value": None if v is None or not np.isfinite(v) else float(v), "threshold": thr(cid),
                     "rule": rule}
        if ev:
            out[cid] = ev
    return out


def reasons_by_id(flags: pd.DataFrame) -> dict[str, tuple[str, ...]]:
    """Candidate id -> the reasons that fire (column order), only for candidates with a reason."""
    a = flags.to_numpy(dtype=bool)
    names = np.array(flags.columns, dtype=object)
    rows = np.flatnonzero(a.any(axis=1))
    ids = flags.index.tolist()
    return {ids[i]: tuple(names[a[i]]) for i in rows}


def counts_by_reason(flags: pd.DataFrame) -> dict[str, int]:
    """Number of candidates per reason (reasons that fire at least once)."""
    s = flags.sum(axis=0)
    return {str(k): int(v) for k, v in s.items() if v > 0}


def hardening_test(entropy: np.ndarray, z: float) -> tuple[bool, float, float]:
    """(noise_dominated, mean percentile, critical value) for the candidates' entropy percentiles.

    Noise-dominated when the mean is not significantly below 0.5 (one-sided):
    ``mean >= 0.5 - z sqrt(1/12) / sqrt(n)``. No candidate: not hardened, mean and critical 0.5.
    """
    n = entropy.size
    if n == 0:
        return False, 0.5, 0.5
    crit = 0.5 - z * math.sqrt(1.0 / 12.0) / math.sqrt(n)
    mean = float(np.mean(entropy))
    return bool(mean >= crit), mean, crit


@dataclass(frozen=True)
class HardeningDecision:
    """Hard vetoes and the entropy-aware hardening decision, once per window (before partitioning).

    Writes ``vetoes`` (hard flags) and ``params``: ``entropy_max`` (x0.9 when hardened, once),
    ``shrinkage_intensity`` (raised to 0.05 when hardened), ``hardened``, ``entropy_mean``,
    ``critical_value``, ``n_hardening``.
    """

    config: SelectionConfig
    name: ClassVar[str] = "hardening"
    reads: ClassVar[tuple[str, ...]] = ("feature_store", "raw_pool", "returns")
    writes: ClassVar[tuple[str, ...]] = ("vetoes", "params", "audit_trail")

    def __call__(self, ctx: SelectionContext) -> SelectionContext:
        c = self.config
        hard = hard_vetoes(ctx.feature_store, ctx.raw_pool, c, len(ctx.returns))
        clean = ~hard.to_numpy(dtype=bool).any(axis=1)
        noise, mean, crit = hardening_test(ctx.feature_store["entropy"].to_numpy()[clean], c.hardening_z)
        hardened = bool(c.hardening and noise)
        entropy_max = c.entropy_max * c.hardening_entropy_factor if hardened else c.entropy_max
        shrink = max(c.default_shrinkage_intensity, c.hardened_shrinkage_intensity) if hardened \
            else c.default_shrinkage_intensity
        data = {"enabled": c.hardening, "hardened": hardened, "entropy_mean": mean,
                "critical_value": crit, "n": int(clean.sum()), "entropy_max": entropy_max,
                "shrinkage_intensity": shrink, "n_hard_vetoed": int((~clean).sum()),
                "hard_vetoes": counts_by_reason(hard)}
        params = {**ctx.params, "entropy_max": entropy_max, "shrinkage_intensity": shrink,
                  "hardened": hardened, "entropy_mean": mean, "critical_value": crit,
                  "n_hardening": int(clean.sum())}
        return ctx.model_copy(update={"vetoes": hard, "params": params,
                                      "audit_trail": ctx.event(self.name, "decided", data)})
