"""``deflated_sharpe(trials=trial_set(...))`` (the trials' variance, effective count and clusters
computed once for every trial's DSR, as the tournament does) equals ``deflated_sharpe(trial_returns)``
field for field, on trials with a constant column and near-duplicate trials that cluster."""
import numpy as np
import pytest

from audit.statistics import deflated_sharpe
from audit.statistics.psr import trial_set
from contracts.errors import ConfigError


def _trials():
    rng = np.random.default_rng(4)
    base = rng.normal(0.0003, 0.01, (700, 12))
    base[:, 3] = 0.0
    base[:, 5] = base[:, 4] + rng.normal(0, 1e-4, 700)  # near-duplicates: one cluster
    return base


@pytest.mark.parametrize("method", ["raw", "clustered", "participation"])
@pytest.mark.parametrize("col", [0, 3, 5])
def test_shared_trial_set_gives_the_same_dsr(method, col):
    mat = _trials()
    ts = trial_set(mat, 0.9)
    assert ts.clusters.n_clusters < mat.shape[1]
    a = deflated_sharpe(mat[:, col], mat, method=method, cluster_threshold=0.9)
    b = deflated_sharpe(mat[:, col], method=method, trials=ts)
    assert a.to_dict() == b.to_dict()


def test_not_both():
    mat = _trials()
    with pytest.raises(ConfigError, match="not both"):
        deflated_sharpe(mat[:, 0], mat, trials=trial_set(mat))
