"""Speed changes in the statistics keep their numbers: PBO's combination labels exactly, the
Mertens standard error to ~1e-15 relative (products instead of numpy's pow)."""
import itertools

import numpy as np

from audit.statistics.pbo import pbo_cscv
from audit.statistics.sharpe import mertens_se


def _mertens_pow(x: np.ndarray, sr: np.ndarray) -> np.ndarray:
    """mertens_se as written with ``d**3`` and ``d**4``."""
    n = x.shape[1]
    d = x - x.mean(axis=1, keepdims=True)
    m2 = np.mean(d * d, axis=1)
    safe = np.where(m2 > 0.0, m2, 1.0)
    g3 = np.mean(d**3, axis=1) / safe**1.5
    g4 = np.mean(d**4, axis=1) / safe**2
    v = np.maximum(1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr * sr, 0.0) / (n - 1.0)
    return np.where(m2 > 0.0, np.sqrt(v), 0.0)


def test_mertens_products_match_pow_to_rounding():
    rng = np.random.default_rng(2)
    x = rng.standard_t(4, size=(400, 480)) * 0.01 + 0.0005
    x[3] = 0.0  # constant row: 0
    sr = np.where(np.ptp(x, axis=1) > 0, x.mean(axis=1) / np.where(np.ptp(x, axis=1) > 0, x.std(axis=1, ddof=1), 1), 0)
    got, want = mertens_se(x, sr), _mertens_pow(x, sr)
    assert got[3] == want[3] == 0.0
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)


def test_pbo_block_labels_are_the_combinations():
    rng = np.random.default_rng(4)
    res = pbo_cscv(rng.normal(size=(160, 5)), n_splits=8)
    want = [",".join(str(int(v)) for v in c) for c in itertools.combinations(range(8), 4)]
    assert res.records["is_blocks"].tolist() == want
