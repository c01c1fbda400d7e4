"""PBO by CSCV: hand-checked case, loop reference twin, noise, genuine drift, degenerate trials."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata

from audit.statistics import pbo_cscv
from contracts.errors import ConfigError, DataError


def _pbo_reference(mat: np.ndarray, s: int) -> tuple[float, np.ndarray]:
    """Slow twin: the paper's procedure, one combination at a time, plain numpy/scipy."""
    t, n = mat.shape
    blocks = np.array_split(np.arange(t), s)

    def sharpe(rows: np.ndarray) -> np.ndarray:
        x = mat[rows]
        out = np.zeros(n)
        for j in range(n):
            if np.ptp(x[:, j]) > 0:  # zero-variance rule: Sharpe 0
                out[j] = x[:, j].mean() / x[:, j].std(ddof=1)
        return out

    lambdas = []
    for combo in itertools.combinations(range(s), s // 2):
        is_rows = np.concatenate([blocks[i] for i in combo])
        oos_rows = np.concatenate([blocks[i] for i in range(s) if i not in combo])
        best = int(np.argmax(sharpe(is_rows)))
        rank = rankdata(sharpe(oos_rows), method="average")[best]
        w = rank / (n + 1)
        lambdas.append(math.log(w / (1 - w)))
    lam = np.array(lambdas)
    return float(np.mean(lam <= 0)), lam


def test_hand_checked_small_case() -> None:
    # S = 2 blocks of 2 rows, N = 4 trials. With two rows (a, b) the Sharpe is
    # (a + b) / (sqrt(2) |a - b|):
    #   block 0 (rows 0-1): A 1.414, B -0.707, C 0, D 0.707
    #   block 1 (rows 2-3): A 0.707, B 1.414, C 0, D -0.707
    # IS = block 0 -> winner A; OOS block 1 ranks D<C<A<B -> rank 3, w = 3/5, lambda = ln 1.5
    # IS = block 1 -> winner B; OOS block 0 ranks B<C<D<A -> rank 1, w = 1/5, lambda = ln 0.25
    # PBO = share of lambda <= 0 = 1/2.
    m = pd.DataFrame(
        {"A": [0.03, 0.01, 0.02, 0.00], "B": [0.00, -0.02, 0.03, 0.01],
         "C": [0.01, -0.01, 0.01, -0.01], "D": [0.02, 0.00, 0.00, -0.02]}
    )
    res = pbo_cscv(m, n_splits=2)
    assert res.pbo == 0.5
    assert res.n_combinations == 2
    rec = res.records
    assert list(rec["is_blocks"]) == ["0", "1"]
    assert list(rec["best_trial"]) == ["A", "B"]
    assert list(rec["oos_rank"]) == [3.0, 1.0]
    np.testing.assert_allclose(res.lambdas, [math.log(1.5), math.log(0.25)], rtol=1e-12)
    np.testing.assert_allclose(rec["is_sharpe"], [math.sqrt(2), math.sqrt(2)], rtol=1e-9)
    np.testing.assert_allclose(rec["oos_sharpe"], [math.sqrt(0.5), -math.sqrt(0.5)], rtol=1e-9)
    assert res.prob_oos_loss == 0.5  # B's OOS Sharpe is negative


def test_vectorised_equals_loop_reference_with_degenerate_and_duplicate_trials() -> None:
    rng = np.random.default_rng(5)
    t = 203  # not a multiple of S: blocks of 25 and 26 rows
    m = rng.normal(0.0002, 0.01, (t, 9))
    m[:, 2] = 0.0  # constant trial (liquidated at the start)
    m[60:, 4] = 0.0  # liquidated after 60 bars: constant in some halves
    m[:, 6] = m[:, 1]  # exact duplicate: ties broken the same way by both
    m[:, 8] = 0.001  # constant non-zero
    res = pbo_cscv(m, n_splits=8)
    pbo_ref, lam_ref = _pbo_reference(m, 8)
    # sums on centred blocks vs direct std: float rounding only, no tie is near-equal
    np.testing.assert_allclose(res.lambdas, lam_ref, rtol=1e-12, atol=1e-12)
    assert res.pbo == pbo_ref
    assert res.n_degenerate_trials == 2
    assert np.isfinite(res.records[["is_sharpe", "oos_sharpe", "lambda"]].to_numpy()).all()


def test_pure_noise_gives_pbo_near_half() -> None:
    # iid trials are exchangeable, so the OOS rank of the IS winner is uniform on 1..N and
    # for even N (here 10) P(lambda <= 0) = 1/2 exactly. One matrix's PBO is very noisy
    # (measured sd 0.24 over 200 seeds at T=320, N=10, S=8: combinations share data), so the
    # test averages 400 seeded matrices: sd of the mean ~0.012, bound 0.05 (~4 sd). ~0.8 s.
    vals = [pbo_cscv(np.random.default_rng(s).normal(0.0, 0.01, (320, 10)), 8).pbo
            for s in range(400)]
    assert abs(float(np.mean(vals)) - 0.5) < 0.05


def test_genuine_drift_gives_pbo_zero() -> None:
    # Trial 3 has per-period Sharpe ~1 (mean 0.01, sd 0.01) against nine zero-mean trials. Each
    # half (400 rows) estimates a Sharpe with sd ~0.05, so trial 3 wins every IS half and is best
    # in every OOS half: lambda = ln(10) > 0 in all 12,870 combinations, PBO = 0 exactly.
    m = np.random.default_rng(8).normal(0.0, 0.01, (800, 10))
    m[:, 3] += 0.01
    res = pbo_cscv(m)
    assert res.n_combinations == 12870
    assert res.pbo == 0.0 and res.prob_oos_loss == 0.0
    assert set(res.records["best_trial"]) == {3}
    np.testing.assert_allclose(res.lambdas, math.log(10.0))


def test_deterministic() -> None:
    m = np.random.default_rng(1).normal(0, 0.01, (96, 6))
    a, b = pbo_cscv(m, 6), pbo_cscv(m, 6)
    assert a.pbo == b.pbo and np.array_equal(a.lambdas, b.lambdas)
    assert a.records.equals(b.records)
    assert a.to_dict()["n_combinations"] == 20


@pytest.mark.parametrize("s", [3, 0, 2.5])
def test_bad_splits(s: object) -> None:
    with pytest.raises(ConfigError, match="n_splits"):
        pbo_cscv(np.zeros((40, 3)), n_splits=s)  # type: ignore[arg-type]


def test_too_few_dates_or_trials() -> None:
    with pytest.raises(DataError, match="2 \\* n_splits"):
        pbo_cscv(np.random.default_rng(0).normal(size=(30, 3)), n_splits=16)
    with pytest.raises(DataError, match="columns"):
        pbo_cscv(np.random.default_rng(0).normal(size=(40, 1)), n_splits=4)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), t=st.integers(8, 60), n=st.integers(2, 6),
       s=st.sampled_from([2, 4]), n_flat=st.integers(0, 2), dup=st.booleans())
def test_property_vectorised_equals_loop_and_column_order_invariant(
        seed: int, t: int, n: int, s: int, n_flat: int, dup: bool) -> None:
    # Data from a seeded normal generator (so no two distinct columns have mathematically
    # equal but differently rounded Sharpes), with constant and duplicated columns mixed in.
    if t < 2 * s:
        t = 2 * s
    rng = np.random.default_rng(seed)
    m = rng.normal(0.0, 0.01, (t, n + n_flat + int(dup)))
    for j in range(n_flat):
        m[:, n + j] = 0.0 if j == 0 else 0.002
    if dup:
        m[:, -1] = m[:, 0]
    res = pbo_cscv(m, n_splits=s)
    pbo_ref, lam_ref = _pbo_reference(m, s)
    np.testing.assert_allclose(res.lambdas, lam_ref, rtol=1e-12, atol=1e-12)
    assert res.pbo == pbo_ref
    if not dup and n_flat < 2:  # no ties: reversing the columns cannot change any rank
        rev = pbo_cscv(m[:, ::-1], n_splits=s)
        np.testing.assert_allclose(rev.lambdas, res.lambdas, rtol=1e-12)
