"""``selection.ranks.average_ranks`` is ``scipy.stats.rankdata(x, method="average")`` bit for bit."""
import numpy as np
from scipy.stats import rankdata

from selection.ranks import average_ranks


def test_average_ranks_equal_rankdata_bit_for_bit():
    rng = np.random.default_rng(17)
    for t in range(2000):
        n = int(rng.integers(0, 200))
        x = rng.normal(size=n) * 10 ** rng.uniform(-6, 3)
        if t % 3 == 0:
            x = np.round(x, int(rng.integers(0, 3)))  # many ties
        if t % 7 == 0 and n:
            x[rng.random(n) < 0.2] = 0.0
            x[rng.random(n) < 0.2] = -0.0  # ties with 0.0
        if t % 11 == 0 and n:
            x[rng.random(n) < 0.1] = np.inf
            x[rng.random(n) < 0.1] = -np.inf
        got, ref = average_ranks(x), rankdata(x, method="average")
        assert got.dtype == ref.dtype and got.shape == ref.shape
        assert got.tobytes() == ref.tobytes(), (t, n)
    assert average_ranks(np.array([2.0, 1.0, 2.0])).tolist() == [2.5, 1.0, 2.5]
