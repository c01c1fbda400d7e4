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


def _all_half_sharpes_numpy(combos, n_b, s1, s2, bmin, bmax, colmean):
    """``pbo._all_half_sharpes`` before it was compiled (main at 6704774), verbatim: the oracle."""
    levels = pbo._prefix_levels(combos)
    parent, blk, _ = levels[0]
    n, t1, t2, lo, hi = n_b[blk], s1[blk], s2[blk], bmin[blk], bmax[blk]
    for parent, blk, _ in levels[1:]:
        n = n[parent] + n_b[blk]
        t1 = t1[parent] + s1[blk]
        t2 = t2[parent] + s2[blk]
        lo = np.minimum(lo[parent], bmin[blk])
        hi = np.maximum(hi[parent], bmax[blk])
    n = n[:, None]
    const = lo == hi
    var = np.maximum(t2 - t1 * t1 / n, 0.0) / (n - 1.0)
    mean = t1 / n + colmean
    ok = ~const & (var > 0.0)
    return np.where(ok, mean / np.sqrt(np.where(ok, var, 1.0)), 0.0)


@pytest.mark.parametrize("name", ["a", "b", "c"])
@pytest.mark.parametrize("s", [2, 4, 8, 16])
def test_compiled_halves_equal_the_numpy_prefix_tree(name, s):
    """The compiled walk (``audit.statistics.pbo_kernel``) gives every half's Sharpe bit for bit as the
    numpy prefix tree it replaced, on the blocks ``pbo_cscv`` forms (same preparation as there)."""
    mat = _matrices()[name]
    if mat.shape[0] < 2 * s:
        pytest.skip("too few rows")
    colmean = mat.mean(axis=0)
    centred = mat - colmean
    blocks = np.array_split(np.arange(mat.shape[0]), s)
    n_b = np.array([len(b) for b in blocks], dtype=np.float64)
    s1 = np.stack([centred[b].sum(axis=0) for b in blocks])
    s2 = np.stack([(centred[b] ** 2).sum(axis=0) for b in blocks])
    bmin = np.stack([mat[b].min(axis=0) for b in blocks])
    bmax = np.stack([mat[b].max(axis=0) for b in blocks])
    combos = np.array(list(itertools.combinations(range(s), s // 2)), dtype=np.int64)
    ref = _all_half_sharpes_numpy(combos, n_b, s1, s2, bmin, bmax, colmean)
    got = pbo._all_half_sharpes(combos, n_b, s1, s2, bmin, bmax, colmean)
    assert ref.shape == got.shape and ref.tobytes() == got.tobytes()


@pytest.mark.parametrize("name", ["a", "b", "c"])
def test_without_records_the_same_result(name):
    """``records=False`` (the PBO null's replicates) changes nothing but the table; the cached
    combinations are read-only and the same on every call."""
    x = _matrices()[name]
    full = pbo.pbo_cscv(x, n_splits=8)
    lean = pbo.pbo_cscv(x, n_splits=8, records=False)
    assert lean.records is None and full.records is not None
    assert np.float64(lean.pbo).tobytes() == np.float64(full.pbo).tobytes()
    assert lean.lambdas.tobytes() == full.lambdas.tobytes()
    assert (lean.prob_oos_loss, lean.n_combinations, lean.n_degenerate_trials) == (
        full.prob_oos_loss, full.n_combinations, full.n_degenerate_trials)
    assert not pbo._combinations(8).flags.writeable and pbo._combinations(8) is pbo._combinations(8)
    np.testing.assert_array_equal(pbo._combinations(8), list(itertools.combinations(range(8), 4)))
