"""``sharpe_ci`` after its speed-up (issue 23, "cut what the profile shows"): the bootstrap indices are
drawn by arch's sampler directly (not through ``StationaryBootstrap.bootstrap``'s generator) and the
replicates' Sharpe, degenerate flags and Mertens errors come from one blocked pass
(``boot_sharpe_stats``). The draws must be arch's, and every figure the previous implementation's
(kept below verbatim as the reference), on several series including a zero-variance one and series
whose replicates are partly constant."""
import math

import numpy as np
import pytest
from arch.bootstrap import StationaryBootstrap

from audit.statistics import sharpe_ci
from audit.statistics._common import (auto_block_length, percentile_ci, sharpe_per_period,
                                      stationary_indices)
from audit.statistics.sharpe import boot_sharpe_stats, mertens_se


def _arch_indices(n_obs, block_length, n_boot, seed):
    """The indices as drawn before: through arch's generator, one replicate at a time."""
    bs = StationaryBootstrap(block_length, np.arange(n_obs), seed=np.random.default_rng(seed))
    out = np.empty((n_boot, n_obs), dtype=np.int64)
    for i, (pos, _) in enumerate(bs.bootstrap(n_boot)):
        out[i] = pos[0]
    return out


def _reference_ci(x, ppy, seed, n_boot=1000, alpha=0.05, method="studentized"):
    """The previous ``sharpe_ci`` body (non-degenerate series, automatic block length)."""
    scale = math.sqrt(ppy)
    sr, _ = sharpe_per_period(x)
    b = auto_block_length(x)
    idx = _arch_indices(x.size, b, n_boot, seed)
    xb = x[idx]
    boot_sr, boot_deg = sharpe_per_period(xb, axis=1)
    if method == "percentile":
        lo, hi = percentile_ci(boot_sr * scale, alpha)
    else:
        se = float(mertens_se(x[None, :], np.atleast_1d(sr))[0])
        se_b = mertens_se(xb, boot_sr)
        ok = ~boot_deg & (se_b > 0.0)
        t_star = (boot_sr[ok] - float(sr)) / se_b[ok]
        if t_star.size < 2 or se == 0.0:
            lo, hi = percentile_ci(boot_sr * scale, alpha)
        else:
            q_lo, q_hi = percentile_ci(t_star, alpha)
            lo, hi = (float(sr) - q_hi * se) * scale, (float(sr) - q_lo * se) * scale
    return float(sr) * scale, lo, hi, int(boot_deg.sum()), b


def _series():
    rng = np.random.default_rng(3)
    ar = np.zeros(900)
    e = rng.standard_t(4, 900) * 0.01
    for t in range(1, 900):
        ar[t] = 0.4 * ar[t - 1] + e[t]
    sparse = np.zeros(60)
    sparse[[5, 40]] = [0.01, -0.02]  # most replicates constant or nearly so
    return {"normal_1100": rng.normal(0.0005, 0.01, 1100), "ar1_t4_900": ar + 0.0003,
            "short_25": rng.normal(0.001, 0.02, 25), "sparse_60": sparse,
            "liquidated_tail": np.r_[rng.normal(0, 0.02, 200), np.zeros(300)]}


@pytest.mark.parametrize("n_obs,block,seed", [(1100, 3, 1), (500, 10, 7), (200, 1, 2), (25, 2, 11), (12, 12, 5)])
def test_indices_are_archs_draws(n_obs, block, seed):
    np.testing.assert_array_equal(stationary_indices(n_obs, block, 300, seed), _arch_indices(n_obs, block, 300, seed))


@pytest.mark.parametrize("name", list(_series()))
@pytest.mark.parametrize("method", ["studentized", "percentile"])
def test_sharpe_ci_matches_previous_implementation(name, method):
    x = _series()[name]
    got = sharpe_ci(x, 365, seed=42, n_boot=500, method=method)
    sr, lo, hi, n_deg, b = _reference_ci(x, 365, 42, n_boot=500, method=method)
    assert got.block_length == b
    assert got.degenerate_draws == n_deg
    np.testing.assert_allclose([got.sharpe, got.ci_low, got.ci_high], [sr, lo, hi], rtol=1e-12, atol=0)


def test_boot_stats_equal_the_separate_calls_bit_for_bit():
    x = _series()["ar1_t4_900"]
    idx = stationary_indices(x.size, 4, 257, 9)  # not a multiple of the block of rows
    sr, deg, se = boot_sharpe_stats(x, idx)
    sr0, deg0 = sharpe_per_period(x[idx], axis=1)
    np.testing.assert_array_equal(sr, sr0)
    np.testing.assert_array_equal(deg, deg0)
    np.testing.assert_array_equal(se, mertens_se(x[idx], sr0))


def test_zero_variance_series_unchanged():
    got = sharpe_ci(np.zeros(300), 365, seed=1)
    assert (got.sharpe, got.ci_low, got.ci_high, got.degenerate, got.status) == (0.0, 0.0, 0.0, True, "degenerate")
