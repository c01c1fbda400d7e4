"""Statistical validation kernels of the audit: bootstrap Sharpe CIs, PSR, DSR, PBO (CSCV),
paired Sharpe tests with Holm's correction, Hansen's SPA and the Model Confidence Set.

Pure functions over numpy/pandas; every random draw takes an explicit integer ``seed``; bad
input raises ``contracts.errors.DataError``/``ConfigError``. Returns are simple returns per
period (fractions), risk-free 0. Each docstring says whether its Sharpe is per period
(``mean / std(ddof=1)``) or annualised (times ``sqrt(periods_per_year)``). Constant series
(zero variance) get Sharpe 0 and a ``degenerate`` flag/status, never NaN.
"""
from audit.statistics.multiple import MCSResult, SPAResult, model_confidence_set, spa_test
from audit.statistics.paired import (
    HolmResult, PairedSharpeTest, holm_correction, paired_sharpe_test,
)
from audit.statistics.pbo import PBOResult, pbo_cscv
from audit.statistics.psr import (
    DSRResult, PSRResult, deflated_sharpe, expected_max_sharpe, probabilistic_sharpe,
    psr_from_moments,
)
from audit.statistics.sharpe import SharpeCI, sharpe_ci
from audit.statistics.trials import EffectiveTrials, TrialClusters, cluster_trials, effective_trials

__all__ = [
    "sharpe_ci", "probabilistic_sharpe", "deflated_sharpe", "effective_trials", "cluster_trials", "pbo_cscv",
    "paired_sharpe_test", "holm_correction", "spa_test", "model_confidence_set",
    "psr_from_moments", "expected_max_sharpe",
    "SharpeCI", "PSRResult", "DSRResult", "EffectiveTrials", "TrialClusters", "PBOResult", "PairedSharpeTest",
    "HolmResult", "SPAResult", "MCSResult",
]
