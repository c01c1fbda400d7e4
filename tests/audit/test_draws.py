"""``audit.statistics.draws.stationary_indices``: the per-replicate ``integers`` / ``random`` /
arch-sampler loop it replaces (kept below verbatim as the reference) gives the same indices, bit for
bit, on every shape that exercises its rules: one observation (``integers(1)`` draws nothing), odd
lengths (a replicate leaves a kept 32-bit half for the next one's first start), block length 1 (every
row a new block) and a length whose bounded draws are rejected and redrawn (Lemire's rule)."""
import numpy as np
import pytest
from arch.bootstrap.base import stationary_bootstrap_sample

from audit.statistics import draws
from audit.statistics._common import stationary_indices


def _loop(n_obs, block_length, n_boot, seed):
    """The previous implementation: one ``integers`` and one ``random`` call per replicate."""
    p = 1.0 / block_length
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, n_obs), dtype=np.int64)
    for i in range(n_boot):
        starts = rng.integers(n_obs, size=n_obs, dtype=np.int64)
        out[i] = stationary_bootstrap_sample(starts, rng.random(n_obs), p)
    return out


@pytest.mark.parametrize("n_obs,block,n_boot,seed", [
    (1, 1, 5, 0), (2, 1, 7, 1), (3, 2, 9, 2), (25, 3, 100, 3), (500, 5, 1000, 4), (1099, 7, 301, 5),
    (999, 1, 50, 6), (17, 17, 33, 7), (4, 4, 1001, 8), (60, 13, 257, 2**40 + 3)])
def test_same_indices_as_the_per_replicate_calls(n_obs, block, n_boot, seed):
    got = stationary_indices(n_obs, block, n_boot, seed)
    assert got.dtype == np.int64 and got.shape == (n_boot, n_obs)
    np.testing.assert_array_equal(got, _loop(n_obs, block, n_boot, seed))


def test_rejected_bounded_draws_are_redrawn_as_numpy_does():
    """n = 4000: numpy rejects a 32-bit draw with probability (2**32 mod 4000) / 2**32 = 7.7e-7, so
    2,000 x 4,000 starts see about six rejections (the words used say how many); every index equal."""
    n, reps, seed = 4000, 2000, 11
    assert draws.lemire_threshold(n) == 2**32 % n == 3296
    words = np.random.default_rng(seed).bit_generator.random_raw(reps * (n // 2 + n) + 64)
    out = np.empty((reps, n), dtype=np.int64)
    used = draws._fill(words, n, reps, 1.0 / 9, np.uint64(draws.lemire_threshold(n)), out)
    rejected = 2 * (used - reps * (n // 2 + n))  # each rejection takes one more 32-bit half
    assert rejected >= 2
    np.testing.assert_array_equal(out, _loop(n, 9, reps, seed))
    np.testing.assert_array_equal(stationary_indices(n, 9, reps, seed), out)


def test_short_word_supply_is_reported_not_read_past():
    n, reps = 7, 3
    words = np.random.default_rng(0).bit_generator.random_raw(reps * (n // 2 + n) - 1)  # 11 + 21 words needed
    assert draws._fill(words, n, reps, 0.5, np.uint64(draws.lemire_threshold(n)), np.empty((reps, n), np.int64)) == -1


def test_bad_length_is_refused():
    with pytest.raises(ValueError, match="n_obs"):
        stationary_indices(0, 1, 3, 0)
