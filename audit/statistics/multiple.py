"""Hansen's SPA test and the Model Confidence Set, through ``arch.bootstrap``.

Both take **returns** (simple, per period) and pass **losses = -returns** to arch, so "lower loss"
means "higher return". Both use arch's stationary bootstrap seeded with
``np.random.default_rng(seed)`` and an explicit mean block length: given, or estimated with
``arch.bootstrap.optimal_block_length`` ('stationary' column) as the **median** over the loss
series that the test bootstraps (SPA: the loss differentials benchmark - model; MCS: the
models' losses), rounded up, floored at 1. The median, not the max used for one or two series
elsewhere in this package, because over hundreds of models the max is driven by a single
noisy estimate.

SPA is **studentised** here (Hansen 2005, eq. 5: ``T = max_k sqrt(n) dbar_k / omega_k``). arch 8.0.0's
``SPA.compute`` (read in ``arch/bootstrap/multiple_comparison.py``) forms its p-values from the
non-studentised ``max_k dbar_k`` whatever ``studentize`` says, so a volatile model dominates the
maximum; :func:`spa_test` therefore computes the statistic itself, with arch's variance estimator
(the stationary bootstrap's implied kernel, Hansen 2005 / arch ``_compute_variance``), arch's
recentring rules (lower / consistent / upper) and arch's stationary-bootstrap draws. With one
model studentising changes nothing and the p-values equal arch's (a test checks it).

The MCS takes a **volatility-normalised loss** by default: ``loss_t = -r_t / sd(r)`` with ``sd``
the model's full-sample standard deviation (ddof 1), whose mean is minus the per-period Sharpe.
The raw loss ``-r_t`` ranks mean returns, which favours the most volatile profile; the normalised
one compares risk-adjusted returns across profiles (``loss="return"`` keeps the raw loss).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from arch.bootstrap import MCS

from audit.statistics._common import (
    as_matrix, as_series_1d, auto_block_length, check_alpha, check_block_length, check_n_boot,
    check_seed, stationary_indices,
)
from contracts.errors import ConfigError, DataError


def _block(block_length: int | None, series: np.ndarray) -> tuple[int, bool]:
    if block_length is None:
        return auto_block_length(series, how="median"), True
    return check_block_length(block_length, series.shape[0]), False


def _unique_labels(labels: list[object], field: str) -> None:
    seen: set[object] = set()
    for lab in labels:
        if lab in seen:
            raise DataError(f"{field}: duplicate column label {lab!r}")
        seen.add(lab)


@dataclass(frozen=True)
class SPAResult:
    """SPA p-values for H0: no model beats the benchmark (higher mean return = lower loss).

    ``pvalues``: Series ``lower``/``consistent``/``upper`` (Hansen 2005), studentised unless
    ``studentized`` is False. Zero-variance rule: a model whose loss differential to the
    benchmark is constant (e.g. a copy of the benchmark, or both liquidated) has no standard
    deviation to studentise by; it is left out of the studentised maximum and listed in
    ``degenerate_models``.
    """

    pvalues: pd.Series
    n_models: int
    n_obs: int
    n_boot: int
    block_length: int
    block_length_auto: bool
    seed: int
    degenerate_models: list[object]
    studentized: bool = True

    def to_dict(self) -> dict[str, object]:
        return {
            "pvalues": {str(k): float(v) for k, v in self.pvalues.items()},
            "n_models": self.n_models, "n_obs": self.n_obs, "n_boot": self.n_boot,
            "block_length": self.block_length, "block_length_auto": self.block_length_auto,
            "seed": self.seed, "degenerate_models": [str(m) for m in self.degenerate_models],
            "studentized": self.studentized,
        }


def _arch_variance(demeaned: np.ndarray, block_length: int) -> np.ndarray:
    """Long-run variance of each column as arch's SPA estimates it (non-nested): the kernel
    implied by a stationary bootstrap with mean block ``block_length`` (Politis & Romano 1994),
    ``sum_i kappa_i gamma_i`` with ``kappa_i = (1 - i/n)(1 - p)^i + (i/n)(1 - p)^(n - i)``."""
    t = demeaned.shape[0]
    p = 1.0 / block_length
    var = np.sum(demeaned**2, 0) / t
    for i in range(1, t):
        kappa = (1.0 - i / t) * (1.0 - p) ** i + (i / t) * (1.0 - p) ** (t - i)
        var += 2.0 * kappa * np.sum(demeaned[: t - i] * demeaned[i:], 0) / t
    return var


def spa_test(
    benchmark_returns: object,
    model_returns: object,
    seed: int,
    n_boot: int = 1000,
    block_length: int | None = None,
    studentize: bool = True,
) -> SPAResult:
    """Hansen's Superior Predictive Ability test of ``model_returns`` against a benchmark.

    ``benchmark_returns``: 1-D per-period returns; ``model_returns``: T x M (dates x models,
    same dates). Small p-values mean some model has a higher expected return than the benchmark.
    ``studentize`` (default True): each model's mean differential is divided by its long-run
    standard deviation ``omega_k`` before the maximum (Hansen 2005); models whose differential
    is constant (``omega_k = 0``) are left out of the maximum (listed as degenerate; all
    degenerate gives p-values 1). ``studentize=False`` gives arch's non-studentised p-values.
    """
    bench = as_series_1d(benchmark_returns, "benchmark_returns")
    models, labels = as_matrix(model_returns, "model_returns", min_cols=1)
    _unique_labels(labels, "model_returns")
    if models.shape[0] != bench.size:
        raise DataError(
            f"model_returns/benchmark_returns: {models.shape[0]} vs {bench.size} dates"
        )
    seed = check_seed(seed)
    n_boot = check_n_boot(n_boot)
    loss_b, loss_m = -bench, -models
    diff = loss_b[:, None] - loss_m
    bl, auto = _block(block_length, diff)
    degenerate = [labels[j] for j in np.flatnonzero(np.ptp(diff, axis=0) == 0.0)]
    n = diff.shape[0]
    dbar = diff.mean(axis=0)
    var = _arch_variance(diff - dbar, bl)
    live = np.ptp(diff, axis=0) > 0.0
    if studentize and not live.any():
        pv = pd.Series([1.0, 1.0, 1.0], index=["lower", "consistent", "upper"])
        return SPAResult(pv, len(labels), n, n_boot, bl, auto, seed, degenerate, studentize)
    # recentring (Hansen 2005; arch's rules): lower keeps only the models doing better,
    # consistent drops the clearly worse ones, upper recentres every model
    threshold = -np.sqrt(np.maximum(var, 0.0) / n * 2.0 * np.log(np.log(n)))
    upper = dbar.copy()
    consistent = np.where(dbar >= threshold, dbar, 0.0)
    lower = np.maximum(dbar, 0.0)
    idx = stationary_indices(n, bl, n_boot, seed)
    boot = np.stack([diff[i].mean(axis=0) for i in idx])  # n_boot x M
    scale = np.where(live, np.sqrt(np.where(live, var, 1.0)), 1.0) if studentize else np.ones_like(dbar)
    keep = live if studentize else np.ones_like(live)
    stat = float(np.max((dbar / scale)[keep]))
    out = []
    for mean in (lower, consistent, upper):
        sim = ((boot - mean) / scale)[:, keep].max(axis=1)
        out.append(float(np.mean(sim > stat)))
    pv = pd.Series(out, index=["lower", "consistent", "upper"], dtype=np.float64)
    return SPAResult(pv, len(labels), n, n_boot, bl, auto, seed, degenerate, studentize)


@dataclass(frozen=True)
class MCSResult:
    """Model Confidence Set at level ``1 - size`` (``loss``: the loss the models were ranked on).

    ``pvalues``: MCS p-value per model (a model is included when its p-value > ``size``,
    arch's convention). ``duplicate_of`` maps each model with exactly the same returns as an
    earlier one to that representative. ``status`` is ``"ok"``, ``"degenerate"`` (fewer than
    two distinct models: all included, p-value 1) or ``"degenerate_step"``: some step met a
    zero deviation of a loss difference that duplicates do not explain (e.g. a model that is
    exactly the equal-weight average of the others); the MCS is then not valid, no model is
    eliminated (all included, p-value 1) and arch's message is in ``warning``. Read such a
    result as "no verdict", never as evidence.
    """

    included: list[object]
    excluded: list[object]
    pvalues: pd.Series
    size: float
    method: str
    n_boot: int
    block_length: int
    block_length_auto: bool
    seed: int
    duplicate_of: dict[object, object]
    status: str
    warning: str
    loss: str = "sharpe"

    def to_dict(self) -> dict[str, object]:
        return {
            "loss": self.loss,
            "included": [str(m) for m in self.included],
            "excluded": [str(m) for m in self.excluded],
            "pvalues": {str(k): float(v) for k, v in self.pvalues.items()},
            "size": self.size, "method": self.method, "n_boot": self.n_boot,
            "block_length": self.block_length, "block_length_auto": self.block_length_auto,
            "seed": self.seed,
            "duplicate_of": {str(k): str(v) for k, v in self.duplicate_of.items()},
            "status": self.status, "warning": self.warning,
        }


def _duplicate_groups(mat: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Representatives (first column of each group of identical columns) and each column's
    representative position."""
    first_seen: dict[bytes, int] = {}
    rep_of = np.empty(mat.shape[1], dtype=np.int64)
    reps: list[int] = []
    for j in range(mat.shape[1]):
        key = np.ascontiguousarray(mat[:, j]).tobytes()
        if key not in first_seen:
            first_seen[key] = j
            reps.append(j)
        rep_of[j] = first_seen[key]
    return reps, rep_of


def model_confidence_set(
    model_returns: object,
    seed: int,
    size: float = 0.10,
    n_boot: int = 1000,
    block_length: int | None = None,
    method: str = "max",
    loss: str = "sharpe",
) -> MCSResult:
    """Hansen, Lunde & Nason (2011) Model Confidence Set of the models with the best mean return.

    ``model_returns``: T x M per-period returns (dates x models). ``size``: the MCS holds the
    best models with confidence ``1 - size`` (default 0.10). ``method``: ``"max"`` (default; the
    ``T_max`` statistic, fast) or ``"R"`` (pairwise ``T_R``; measured at 34.5 s on 240 models).

    ``loss``: ``"sharpe"`` (default) the volatility-normalised loss ``-r_t / sd(r)`` (its mean is
    minus the per-period Sharpe; a constant model has loss 0), or ``"return"``, ``-r_t``.

    Zero-variance rule: models with exactly identical returns (e.g. several cells liquidated
    at the same bar, constant 0 afterwards and equal before) cannot be told apart and would
    make arch divide by a zero deviation; only the first of each group enters the MCS and
    every copy receives its representative's p-value and verdict (``duplicate_of``).
    """
    if method not in ("max", "R"):
        raise ConfigError(f"method: expected 'max' or 'R', got {method!r}")
    if loss not in ("sharpe", "return"):
        raise ConfigError(f"loss: expected 'sharpe' or 'return', got {loss!r}")
    mat, labels = as_matrix(model_returns, "model_returns", min_cols=2)
    _unique_labels(labels, "model_returns")
    seed = check_seed(seed)
    n_boot = check_n_boot(n_boot)
    size = check_alpha(size, "size")
    reps, rep_of = _duplicate_groups(mat)
    duplicate_of = {labels[j]: labels[int(rep_of[j])] for j in range(len(labels))
                    if rep_of[j] != j}
    losses = -mat[:, reps]
    if loss == "sharpe":
        sd = losses.std(axis=0, ddof=1)
        flat = np.ptp(losses, axis=0) == 0.0
        losses = np.where(flat, 0.0, losses / np.where(flat, 1.0, sd))
    bl, auto = _block(block_length, losses)
    status, message = "ok", ""
    if len(reps) < 2:
        rep_p = np.ones(len(reps))
        status = "degenerate"
    else:
        mcs = MCS(losses, size=size, reps=n_boot, block_size=bl, method=method,
                  bootstrap="stationary", seed=np.random.default_rng(seed))
        try:
            # arch 8 only *warns* on a zero deviation and then divides 0/0; its elimination
            # loop finds no NaN maximum and never ends. Raising the warning stops it.
            with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
                warnings.simplefilter("error", RuntimeWarning)
                mcs.compute()
            pv = mcs.pvalues["Pvalue"]
            rep_p = np.array([float(pv.loc[i]) for i in range(len(reps))])
        except RuntimeWarning as exc:
            status, message = "degenerate_step", str(exc)
            rep_p = np.ones(len(reps))
    pos_of_rep = {col: i for i, col in enumerate(reps)}
    pvals = pd.Series([rep_p[pos_of_rep[int(rep_of[j])]] for j in range(len(labels))],
                      index=pd.Index(labels), name="mcs_pvalue", dtype=np.float64)
    included = [lab for lab in labels if pvals[lab] > size]
    excluded = [lab for lab in labels if pvals[lab] <= size]
    return MCSResult(included, excluded, pvals, size, method, n_boot, bl, auto, seed,
                     duplicate_of, status, message, loss)
