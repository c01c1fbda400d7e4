"""Probabilistic and Deflated Sharpe ratios (Bailey & Lopez de Prado 2012, 2014).

All Sharpe ratios in this module are **per period** (not annualised): ``mean / std(ddof=1)`` of
simple returns per period, risk-free 0. To compare with an annualised figure divide it by
``sqrt(periods_per_year)``; a variance of annualised Sharpes divides by ``periods_per_year``.
Skewness ``g3`` and kurtosis ``g4`` are the sample (biased, population-moment) estimators,
``g4`` non-excess (3 for a normal law), as in the papers' code.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import norm

from audit.statistics._common import as_matrix, as_series_1d, check_positive, sharpe_per_period
from audit.statistics.trials import EffectiveTrials, TrialClusters, cluster_trials, effective_trials
from contracts.errors import ConfigError

EULER_GAMMA = 0.5772156649015329  # Euler-Mascheroni constant (= numpy.euler_gamma)

STATUS_OK = "ok"
STATUS_DEGENERATE = "degenerate"
STATUS_ZERO_SR_VARIANCE = "zero_sr_variance"


def sample_moments(x: np.ndarray) -> tuple[float, float]:
    """Biased sample skewness ``m3 / m2^1.5`` and non-excess kurtosis ``m4 / m2^2``.

    Equal to ``scipy.stats.skew(x)`` and ``scipy.stats.kurtosis(x, fisher=False)``; computed
    here directly so a near-constant series cannot trip scipy's precision warning. Callers
    handle constant series (``m2 == 0``) before calling.
    """
    d = x - x.mean()
    m2 = float(np.mean(d * d))
    return float(np.mean(d**3) / m2**1.5), float(np.mean(d**4) / m2**2)


def psr_from_moments(
    sr: float, n_obs: int, skewness: float, kurtosis: float, sr_benchmark: float = 0.0
) -> tuple[float, float | None, str]:
    """PSR kernel: ``Phi((SR - SR*) sqrt(n-1) / sqrt(1 - g3 SR + (g4 - 1)/4 SR^2))``.

    ``sr`` and ``sr_benchmark`` are per-period Sharpe ratios; ``kurtosis`` is non-excess.
    Returns ``(psr, z, status)``. By Pearson's inequality ``g4 >= 1 + g3^2`` the variance term
    is ``>= (1 - g3 SR / 2)^2 >= 0``; when it is 0 (floating point: ``<= 0``) the estimate has
    no sampling spread and the documented rule is the limit: PSR 1 if ``SR > SR*``, 0 if
    ``SR < SR*``, 0.5 if equal, status ``"zero_sr_variance"`` and ``z`` None (undefined; kept
    out of JSON as a non-finite number).
    """
    if n_obs < 2:
        raise ConfigError(f"n_obs: at least 2 observations needed, got {n_obs}")
    var_term = 1.0 - skewness * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    diff = sr - sr_benchmark
    if var_term <= 0.0:
        psr = 1.0 if diff > 0.0 else (0.0 if diff < 0.0 else 0.5)
        return psr, None, STATUS_ZERO_SR_VARIANCE
    z = diff * math.sqrt(n_obs - 1.0) / math.sqrt(var_term)
    return float(norm.cdf(z)), z, STATUS_OK


@dataclass(frozen=True)
class PSRResult:
    """Result of :func:`probabilistic_sharpe`; Sharpe figures are per period.

    ``psr`` is the probability that the true per-period Sharpe exceeds ``sr_benchmark``;
    ``z`` its standard-normal statistic (None when undefined).
    Constant series: ``psr = 0.0`` (a flat or liquidated track record shows no skill),
    ``degenerate=True``, status ``"degenerate"``, ``z`` None, skewness/kurtosis reported as
    0 and 3.
    """

    psr: float
    z: float | None
    sharpe_per_period: float
    sr_benchmark: float
    n_obs: int
    skewness: float
    kurtosis: float
    degenerate: bool
    status: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def probabilistic_sharpe(returns: object, sr_benchmark: float = 0.0) -> PSRResult:
    """Probabilistic Sharpe Ratio of ``returns`` against a per-period benchmark Sharpe.

    ``returns``: 1-D simple returns per period (fraction). ``sr_benchmark``: per-period SR*
    (an annualised SR* must be divided by ``sqrt(periods_per_year)`` first).
    """
    x = as_series_1d(returns, "returns")
    bench = float(sr_benchmark)
    if not math.isfinite(bench):
        raise ConfigError(f"sr_benchmark: expected a finite number, got {sr_benchmark!r}")
    sr, deg = sharpe_per_period(x)
    if bool(deg):
        return PSRResult(0.0, None, 0.0, bench, int(x.size), 0.0, 3.0, True,
                         STATUS_DEGENERATE)
    g3, g4 = sample_moments(x)
    psr, z, status = psr_from_moments(float(sr), int(x.size), g3, g4, bench)
    return PSRResult(psr, z, float(sr), bench, int(x.size), g3, g4, False, status)


def expected_max_sharpe(n_trials: float, sr_variance: float) -> float:
    """SR0: expected maximum per-period Sharpe of ``n_trials`` unskilled trials (DSR hurdle).

    ``SR0 = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))`` with ``V`` the
    variance of the trials' per-period Sharpes and ``gamma`` the Euler-Mascheroni constant
    (Bailey & Lopez de Prado 2014, eq. for E[max]). The formula is an extreme-value
    approximation; for ``N <= 1`` (no selection) SR0 is 0, and SR0 is floored at 0 because
    the approximation turns negative for ``1 < N < ~1.3`` (fractional effective counts).
    """
    n = float(n_trials)
    v = float(sr_variance)
    if not (math.isfinite(n) and n >= 1.0):
        raise ConfigError(f"n_trials: expected a number >= 1, got {n_trials!r}")
    if not (math.isfinite(v) and v >= 0.0):
        raise ConfigError(f"sr_variance: expected a number >= 0, got {sr_variance!r}")
    if n <= 1.0 or v == 0.0:
        return 0.0
    q = (1.0 - EULER_GAMMA) * norm.ppf(1.0 - 1.0 / n) + EULER_GAMMA * norm.ppf(
        1.0 - 1.0 / (n * math.e)
    )
    return max(0.0, math.sqrt(v) * float(q))


DSR_METHODS = ("raw", "clustered", "participation")


@dataclass(frozen=True)
class DSRResult:
    """Result of :func:`deflated_sharpe`; all Sharpe figures per period.

    Two readings of the same selected Sharpe, each a PSR against its own hurdle SR0:

    - ``dsr_raw``: the raw trial count ``n_trials_raw`` with ``sr_variance``, the variance of
      all trials' Sharpes (Bailey & Lopez de Prado 2014 as written);
    - ``dsr_clustered``: ``n_trials_clustered`` clusters of correlated trials
      (:func:`audit.statistics.trials.cluster_trials`) with ``sr_variance_clustered``, the
      variance of the cluster representatives' Sharpes.

    ``dsr`` is the headline, the reading named by ``method`` (``n_trials``/``sr0`` are its count
    and hurdle); ``dsr_all_trials``/``sr0_all_trials`` repeat the raw reading (kept for
    compatibility). With an explicit ``n_trials`` the method is ``"given"`` and the clustered
    reading equals the headline when no trial matrix is given.
    """

    dsr: float
    dsr_all_trials: float
    sharpe_per_period: float
    sr0: float
    sr0_all_trials: float
    n_trials: float
    n_trials_raw: float
    trials_method: str
    sr_variance: float
    n_obs: int
    skewness: float
    kurtosis: float
    degenerate: bool
    status: str
    dsr_raw: float = 0.0
    dsr_clustered: float = 0.0
    n_trials_clustered: float = 1.0
    sr_variance_clustered: float = 0.0
    sr0_clustered: float = 0.0
    method: str = "raw"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class TrialSet:
    """What ``deflated_sharpe`` derives from a trial matrix, whichever trial it deflates:
    ``sr_variance`` (variance, ddof=1, of the trials' per-period Sharpes; constant trials count with
    Sharpe 0), the participation-ratio ``effective`` trials (raw count in ``n_trials``) and the
    correlation ``clusters``. Built once by ``trial_set`` and given to every trial's DSR (``trials=``):
    the same numbers as passing ``trial_returns`` to each call."""

    sr_variance: float
    effective: EffectiveTrials
    clusters: TrialClusters


def trial_set(trial_returns: object, cluster_threshold: float = 0.9) -> TrialSet:
    """``TrialSet`` of a T x N (dates x trials, common dates) matrix of per-period returns."""
    mat, _ = as_matrix(trial_returns, "trial_returns", min_cols=1)
    trial_sr, _ = sharpe_per_period(mat, axis=0)
    var = float(np.var(trial_sr, ddof=1)) if trial_sr.size > 1 else 0.0
    return TrialSet(var, effective_trials(mat, method="participation"),
                    cluster_trials(mat, threshold=cluster_threshold))


def deflated_sharpe(
    returns: object,
    trial_returns: object | None = None,
    *,
    n_trials: float | None = None,
    sr_variance: float | None = None,
    method: str = "raw",
    cluster_threshold: float = 0.9,
    trials: TrialSet | None = None,
) -> DSRResult:
    """Deflated Sharpe Ratio of the selected strategy's ``returns``.

    Parameters
    ----------
    returns
        1-D simple returns per period of the selected trial.
    trial_returns
        Optional T x N matrix (dates x trials, common dates, selected trial included) of every
        trial's returns. Gives ``sr_variance`` (variance, ddof=1, of the trials' per-period
        Sharpes; constant trials count with Sharpe 0), the raw count N and the clusters.
    n_trials
        Explicit number of trials (>= 1, may be fractional); overrides the headline count
        (``trials_method`` "given").
    sr_variance
        Explicit variance of the per-period trial Sharpes (a variance of annualised Sharpes
        divides by ``periods_per_year``); overrides the one from ``trial_returns``.
    method
        The headline reading: ``"raw"`` (default; its false-positive rate is at most nominal
        under correlated trials, see ``benchmarks/calibration.py``), ``"clustered"``, or
        ``"participation"``: the participation-ratio effective count with the all-trials
        variance. The last counts a common factor twice (the cross-trial variance already
        excludes it) and exceeds its nominal rate (about 10% at 5% with 30 trials at
        correlation 0.43); it is kept only to show that.
    cluster_threshold
        Average correlation at which trials merge into one cluster (default 0.9).
    trials
        ``trial_set(trial_returns, cluster_threshold)`` computed once for many calls, in place of
        ``trial_returns`` (not both): the same result.

    Constant ``returns``: DSR 0.0 (no evidence of skill), status ``"degenerate"``.
    """
    if method not in DSR_METHODS:
        raise ConfigError(f"dsr method: expected one of {DSR_METHODS}, got {method!r}")

    x = as_series_1d(returns, "returns")
    eff: EffectiveTrials | None = None
    clusters = None
    if trials is not None and trial_returns is not None:
        raise ConfigError("deflated_sharpe: give trial_returns or trials, not both")
    if trial_returns is not None:
        trials = trial_set(trial_returns, cluster_threshold)
    if trials is not None:
        if sr_variance is None:
            sr_variance = trials.sr_variance
        eff, clusters = trials.effective, trials.clusters
    if sr_variance is None or (n_trials is None and eff is None):
        raise ConfigError(
            "deflated_sharpe: give trial_returns, or both n_trials and sr_variance"
        )
    n_raw = float(eff.n_trials) if eff is not None else float(n_trials)  # type: ignore[arg-type]
    if clusters is not None:
        n_cl, var_cl = float(clusters.n_clusters), clusters.sr_variance
    else:
        n_cl, var_cl = n_raw, float(sr_variance)
    readings = {"raw": (n_raw, float(sr_variance)), "clustered": (n_cl, var_cl)}
    if eff is not None:
        readings["participation"] = (eff.n_effective, float(sr_variance))
    if n_trials is not None:
        n_used, var_used, label = float(n_trials), float(sr_variance), "given"
    else:
        n_used, var_used = readings[method]
        label = method
    check_positive(n_used, "n_trials")
    sr0 = expected_max_sharpe(n_used, var_used)
    sr0_raw = expected_max_sharpe(*readings["raw"])
    sr0_cl = expected_max_sharpe(*readings["clustered"])
    psr = probabilistic_sharpe(x, sr0)
    if psr.degenerate:
        return DSRResult(0.0, 0.0, 0.0, sr0, sr0_raw, n_used, n_raw, label, var_used,
                         int(x.size), 0.0, 3.0, True, STATUS_DEGENERATE, 0.0, 0.0, n_cl, var_cl,
                         sr0_cl, label)

    def _at(hurdle: float) -> float:
        return psr_from_moments(psr.sharpe_per_period, psr.n_obs, psr.skewness, psr.kurtosis,
                                hurdle)[0]

    dsr_raw, dsr_cl = _at(sr0_raw), _at(sr0_cl)
    return DSRResult(psr.psr, dsr_raw, psr.sharpe_per_period, sr0, sr0_raw, n_used, n_raw,
                     label, var_used, psr.n_obs, psr.skewness, psr.kurtosis, False,
                     psr.status, dsr_raw, dsr_cl, n_cl, var_cl, sr0_cl, label)
