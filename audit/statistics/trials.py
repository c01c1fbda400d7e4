"""Effective number of independent trials from the trials' return correlation.

Default method, ``"participation"``: the participation ratio of the eigenvalues ``l`` of the
trials' correlation matrix ``C``,

    N_eff = (sum l)^2 / sum l^2 = N^2 / ||C||_F^2 = N^2 / (N + sum_{i != j} rho_ij^2),

(no eigendecomposition needed: ``sum l = trace C = N`` and ``sum l^2 = ||C||_F^2``). Why this
one: our trials are clustered (engine x profile x step x window x lookback; the same engine with
another lookback is nearly the same strategy). For ``k`` equal clusters of perfectly correlated
trials it gives exactly ``k``, and ``N`` for uncorrelated trials, whereas the average-correlation
formula ``rho + (1 - rho) N`` of Bailey & Lopez de Prado (2014) sees a low *average*
correlation and gives ~``0.91 N`` for 10 clusters of 10 (``N = 100``, ``k = 10``).

Finite-sample bias: with ``T`` dates a zero correlation is estimated with ``E[r^2] ~ 1/(T-1)``,
which alone would pull ``N_eff`` of ``N`` independent trials down to ~``N / (1 + (N-1)/(T-1))``
(a lower hurdle SR0, i.e. an anti-conservative DSR). ``debias=True`` (default) therefore replaces each
``r^2`` by ``r^2 - (1 - r^2)^2 / (T - 1)``, the first-order correction of ``E[r^2] = rho^2 +
(1 - rho^2)^2 / (T - 1) + O(T^-2)`` (Fisher / Olkin-Pratt), and floors only the *sum* over pairs
at 0 (flooring each pair would re-introduce a positive bias).

The alternative ``"average_correlation"``: ``N_eff = rho_bar + (1 - rho_bar) N`` with
``rho_bar`` the mean off-diagonal correlation, clipped to ``[1, N]``.

Constant trials (zero variance, correlation undefined) are left out of ``C`` and, all together,
count as one more trial: they are one flat strategy. ``N_eff`` is clipped to ``[1, N]``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from audit.statistics._common import as_matrix
from contracts.errors import ConfigError

METHODS = ("participation", "average_correlation")


@dataclass(frozen=True)
class EffectiveTrials:
    """``n_effective`` in ``[1, n_trials]``; ``average_correlation`` of the live trials (0 if
    fewer than two); ``n_degenerate`` constant trials (counted together as one)."""

    n_effective: float
    n_trials: int
    method: str
    average_correlation: float
    n_degenerate: int
    debiased: bool

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def effective_trials(
    trial_returns: object, method: str = "participation", debias: bool = True
) -> EffectiveTrials:
    """Effective number of independent trials of a T x N (dates x trials) return matrix.

    See the module docstring for the methods and the rules (constant trials, bias, clipping).
    ``debias`` applies to ``"participation"`` only.
    """
    if method not in METHODS:
        raise ConfigError(f"effective_method: expected one of {METHODS}, got {method!r}")
    mat, _ = as_matrix(trial_returns, "trial_returns", min_cols=1)
    n_obs, n = mat.shape
    live = np.ptp(mat, axis=0) > 0.0
    n_deg = int(n - live.sum())
    m = int(live.sum())
    if m < 2:
        n_eff = float(min(n, m + (1 if n_deg else 0)))
        return EffectiveTrials(max(1.0, n_eff), n, method, 0.0, n_deg, debias)
    corr = np.corrcoef(mat[:, live], rowvar=False)
    off = ~np.eye(m, dtype=bool)
    rho_bar = float(corr[off].mean())
    if method == "participation":
        r2 = corr[off] ** 2
        if debias:
            r2 = r2 - (1.0 - r2) ** 2 / (n_obs - 1.0)
        n_live = m * m / (m + max(0.0, float(r2.sum())))
    else:
        n_live = rho_bar + (1.0 - rho_bar) * m
    n_eff = n_live + (1.0 if n_deg else 0.0)
    return EffectiveTrials(float(np.clip(n_eff, 1.0, n)), n, method, rho_bar, n_deg, debias)


@dataclass(frozen=True)
class TrialClusters:
    """Trials grouped by return correlation (:func:`cluster_trials`).

    ``labels``: cluster number (0..K-1, in order of first appearance) per trial;
    ``representatives``: T x K equal-weight average return of each cluster's trials (per period);
    ``representative_sharpes``: their per-period Sharpes; ``sr_variance``: the variance (ddof=1)
    of those Sharpes (0 when K == 1).
    """

    n_clusters: int
    n_trials: int
    threshold: float
    labels: np.ndarray
    representatives: np.ndarray
    representative_sharpes: np.ndarray
    sr_variance: float
    method: str = "average_linkage_correlation"

    def to_dict(self) -> dict[str, object]:
        return {"n_clusters": self.n_clusters, "n_trials": self.n_trials, "threshold": self.threshold,
                "labels": [int(v) for v in self.labels], "sr_variance": self.sr_variance,
                "method": self.method}


def cluster_trials(trial_returns: object, threshold: float = 0.9) -> TrialClusters:
    """Cluster the trials of a T x N (dates x trials) matrix by their return correlation.

    Average-linkage hierarchical clustering (``scipy.cluster.hierarchy``) on the distance
    ``1 - rho``, cut at ``1 - threshold``: two groups merge while the *average* correlation
    between their trials is at least ``threshold`` (default 0.9). It is the ONC idea of Lopez de
    Prado (2019, "A data science solution to the multiple-testing crisis") with a fixed cut in
    place of the silhouette search: near-identical trials (the same engine with another lookback)
    count once, and trials that merely share a market factor (correlation 0.5-0.8) stay apart,
    because the cross-trial variance of their Sharpes already excludes the common part.
    Constant trials (correlation undefined) form one cluster together. Each cluster's
    representative is the equal-weight average of its trials' returns.
    """
    if not 0.0 < float(threshold) < 1.0:
        raise ConfigError(f"cluster_threshold: expected 0 < threshold < 1, got {threshold!r}")
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    from audit.statistics._common import sharpe_per_period

    mat, _ = as_matrix(trial_returns, "trial_returns", min_cols=1)
    n = mat.shape[1]
    live = np.flatnonzero(np.ptp(mat, axis=0) > 0.0)
    raw = np.full(n, -1, dtype=np.int64)
    if live.size >= 2:
        corr = np.clip(np.corrcoef(mat[:, live], rowvar=False), -1.0, 1.0)
        dist = 1.0 - corr
        np.fill_diagonal(dist, 0.0)
        dist = (dist + dist.T) / 2.0
        z = linkage(squareform(dist, checks=False), method="average")
        raw[live] = fcluster(z, t=1.0 - float(threshold), criterion="distance")
    elif live.size == 1:
        raw[live] = 1
    # renumber by first appearance (constant trials share the label -1 -> one cluster)
    labels = np.empty(n, dtype=np.int64)
    seen: dict[int, int] = {}
    for j, v in enumerate(raw):
        labels[j] = seen.setdefault(int(v), len(seen))
    k = len(seen)
    reps = np.column_stack([mat[:, labels == c].mean(axis=1) for c in range(k)])
    sr, _ = sharpe_per_period(reps, axis=0)
    var = float(np.var(sr, ddof=1)) if k > 1 else 0.0
    return TrialClusters(k, n, float(threshold), labels, reps, sr, var)
