"""``pbo_cscv``'s shared-prefix path (``_all_half_sharpes`` + ``_complement_index``) against the
chunked path it bypasses (every half summed block by block, kept for inputs above ``_ALL_CELLS``):
every record bit for bit, on matrices with constant trials, trials constant over part of the sample,
duplicated trials (exact ties) and every S the tournament allows."""
import itertools

import numpy as np
import pytest

import audit.statistics.pbo as pbo


def _matrices():
    rng = np.random.default_rng(5)
    a = rng.normal(0.0002, 0.01, (957, 40))
    a[:, 3] = 0.0                        # constant trial (degenerate everywhere)
    a[:400, 7] = 0.001                   # constant over the first blocks only
    a[:, 9] = a[:, 10]                   # exact ties
    b = rng.standard_t(3, (64, 6)) * 0.02
    c = np.round(rng.normal(0, 0.01, (200, 12)), 3)  # coarse values: many equal Sharpes
    return {"a": a, "b": b, "c": c}


@pytest.mark.parametrize("name", ["a", "b", "c"])
@pytest.mark.parametrize("s", [4, 8, 16])
def test_shared_prefix_path_equals_the_chunked_path(name, s, monkeypatch):
    x = _matrices()[name]
    if x.shape[0] < 2 * s:
        pytest.skip("too few rows")
    fast = pbo.pbo_cscv(x, n_splits=s)
    monkeypatch.setattr(pbo, "_ALL_CELLS", 0)
    slow = pbo.pbo_cscv(x, n_splits=s)
    assert fast.pbo == slow.pbo and fast.prob_oos_loss == slow.prob_oos_loss
    for col in slow.records.columns:
        np.testing.assert_array_equal(fast.records[col].to_numpy(), slow.records[col].to_numpy(), err_msg=col)


def test_complements_and_prefixes():
    s = 10
    combos = np.array(list(itertools.combinations(range(s), s // 2)), dtype=np.int64)
    other = pbo._complement_index(combos, s)
    for i in (0, 1, 77, len(combos) - 1):
        assert set(combos[other[i]]) == set(range(s)) - set(combos[i])
    levels = pbo._prefix_levels(combos)
    assert [lv[0].size for lv in levels] == [len({tuple(r[:k + 1]) for r in combos}) for k in range(s // 2)]
    np.testing.assert_array_equal(levels[-1][2], np.arange(len(combos)))
