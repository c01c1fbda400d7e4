"""Behaviour-preserving speed-ups of the frozen v3.4 engine give the loop's numbers bit for bit."""
import math

import numpy as np

from selection.legacy.features import hurst_rs


def _hurst_loop(v: np.ndarray) -> float:
    """hurst_rs as frozen in v3.4: one block at a time."""
    n = v.size
    if n < 32:
        return 0.5
    logs_lag, logs_rs = [], []
    lag = 8
    while lag <= n // 2:
        rs = []
        for b in range(n // lag):
            blk = v[b * lag:(b + 1) * lag]
            dev = np.cumsum(blk - blk.mean())
            s = blk.std()
            if s > 0:
                rs.append((dev.max() - dev.min()) / s)
        if rs and np.mean(rs) > 0:
            logs_lag.append(math.log(lag))
            logs_rs.append(math.log(float(np.mean(rs))))
        lag *= 2
    if len(logs_lag) < 2:
        return 0.5
    slope = np.polyfit(np.array(logs_lag), np.array(logs_rs), 1)[0]
    return float(min(1.0, max(0.0, slope)))


def test_hurst_blocks_as_rows_equal_the_block_loop_exactly():
    rng = np.random.default_rng(3)
    for t in range(3000):
        n = int(rng.integers(20, 520))
        v = rng.standard_t(3, size=n) * 10 ** rng.uniform(-4, 0)
        if t % 5 == 0:
            v[: int(rng.integers(0, n))] = 0.0  # zero-variance blocks are skipped
        if t % 7 == 0:
            v = np.round(v, 3)
        assert hurst_rs(v) == _hurst_loop(v), (t, n)
    assert hurst_rs(np.zeros(100)) == _hurst_loop(np.zeros(100)) == 0.5


def test_correlation_rows_from_column_i_on_equal_the_full_rows():
    from selection.legacy.engine import _corr_row

    rng = np.random.default_rng(5)
    for t in range(150):
        T, k = int(rng.integers(2, 300)), int(rng.integers(2, 40))
        sub = rng.normal(size=(T, k)) * 0.02
        sub[rng.random(sub.shape) < 0.1] = np.nan
        if t % 3 == 0:
            sub[: int(rng.integers(0, T)), int(rng.integers(0, k))] = np.nan  # late listing
        if t % 5 == 0:
            sub[:, 0] = 0.01  # constant column: correlation 0
        for i in range(k - 1):
            np.testing.assert_array_equal(_corr_row(sub[:, i:], 0, 20)[1:], _corr_row(sub, i, 20)[i + 1:])
