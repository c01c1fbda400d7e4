"""The fast ordinal-pattern codes (comparisons + table) equal the stable-argsort definition exactly,
so permutation entropy and its null tables are bit-identical to the argsort implementation."""
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from market.entropy import _entropy_from_codes, _pattern_codes, _series_codes, permutation_entropy


def _reference_entropy(x: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """permutation_entropy as written before the fast codes (stable argsort per window)."""
    w = sliding_window_view(x.T, order, axis=1)
    valid = ~np.isnan(w).any(axis=-1)
    codes = _pattern_codes(np.where(np.isnan(w), 0.0, w))
    return _entropy_from_codes(codes, valid, order), valid.sum(axis=1)


@pytest.mark.parametrize("order", [3, 4, 5, 6])
def test_series_codes_equal_stable_argsort_codes(order):
    rng = np.random.default_rng(7)
    for trial in range(60):
        n, k = int(rng.integers(order, 200)), int(rng.integers(1, 12))
        x = rng.random((k, n))
        if trial % 2:
            x = np.round(x * 3) / 3  # many ties: the stable order decides
        if trial % 3 == 0:
            x[rng.random(x.shape) < 0.2] = 0.0
            x[0, : min(3, n)] = -0.0  # -0.0 == 0.0 for both
        want = _pattern_codes(sliding_window_view(x, order, axis=1))
        got = _series_codes(x, order)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_permutation_entropy_bit_identical_with_nans_and_ties():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(300, 40))
    x[:, ::3] = np.round(x[:, ::3], 1)
    x[rng.random(x.shape) < 0.05] = np.nan
    x[:120, 5] = np.nan  # late listing
    got, n_got = permutation_entropy(x)
    want, n_want = _reference_entropy(x, 5)
    assert np.array_equal(got, want, equal_nan=True)  # exact, not approximately
    np.testing.assert_array_equal(n_got, n_want)
