"""The compiled bootstrap moments (``audit.statistics.bootmoments``, issue 23: the post-unit statistics'
CPU) against the numpy code they replace, kept here or in the package as the oracle. Every comparison is
bit for bit (``tobytes``), on series that exercise numpy's pairwise summation at every size class
(fewer than 8 values, up to 128, split above), constant and tied series, signed zeros and the word
refills of the generator (replicates longer than one batch of words)."""
import contextlib
import math
import warnings

import numpy as np
import pytest

from audit.statistics._common import auto_block_length, sharpe_per_period, stationary_indices
from audit.statistics.bootmoments import (block_bootstrap_parts, pairwise_program, pcg64_words,
                                          stationary_moments)
from audit.statistics.paired import (_diff_and_grad, boot_sharpes, sharpe_difference_hac,
                                     studentized_bootstrap_pvalue)
from audit.statistics.sharpe import boot_sharpe_draws, boot_sharpe_stats

SIZES = [1, 2, 3, 7, 8, 9, 15, 16, 17, 127, 128, 129, 136, 255, 256, 257, 1000, 5000]


def _series(n: int, kind: str, rng) -> np.ndarray:
    if kind == "normal":
        return rng.normal(0.0005, 0.01, n)
    if kind == "constant":
        return np.full(n, 0.003)
    if kind == "ties":  # few distinct values: many replicates constant or nearly so; signed zeros
        return rng.choice(np.array([0.0, -0.0, 0.01, -0.02]), n)
    return rng.standard_t(3, n) * 10.0 ** rng.integers(-8, 3)  # heavy tails, any scale


@contextlib.contextmanager
def _quiet():
    """n = 1 or 2: numpy warns (ddof) and divides by zero in the oracle; the kernel must match it."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_pairwise_program_is_numpys_sum():
    """The flattened recursion summed by the kernel gives numpy's ``add.reduce`` of a row exactly
    (through ``stationary_moments`` with block length n: one block per replicate, a rotation)."""
    rng = np.random.default_rng(0)
    for n in list(range(1, 300)) + [511, 512, 513, 1023, 1025, 4096, 5000, 8193, 20000]:
        starts, lengths, prog = pairwise_program(n)
        assert lengths.sum() == n and (lengths <= 128).all() and np.all(np.diff(starts) == lengths[:-1])
        x = rng.standard_t(3, n) * 10.0 ** rng.integers(-5, 5)
        idx = stationary_indices(n, n, 3, n)
        sums, _ = stationary_moments(x[None], n, 3, n)
        assert _same(sums[0, 0], x[idx].sum(axis=1)), n


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("kind", ["normal", "constant", "ties", "heavy"])
def test_boot_sharpe_draws_equal_the_matrix_path(n, kind):
    """``boot_sharpe_draws`` == ``boot_sharpe_stats(x, stationary_indices(...))``: Sharpe, degenerate
    flags and Mertens errors, bit for bit, at several block lengths."""
    rng = np.random.default_rng(n * 31 + len(kind))
    x = _series(n, kind, rng)
    for block in sorted({1, 3, 25, n} & set(range(1, n + 1))):
        seed = 1000 * n + block
        with _quiet():
            ref = boot_sharpe_stats(x, stationary_indices(n, block, 157, seed))
            got = boot_sharpe_draws(x, block, 157, seed)
        for r, g in zip(ref, got):
            assert _same(r, g), (n, kind, block)


@pytest.mark.parametrize("n", SIZES)
def test_boot_sharpes_equal_sharpe_per_period_of_the_gathered_rows(n):
    """The paired test's replicates: both legs resampled with the same indices, as before."""
    rng = np.random.default_rng(n)
    xs = np.vstack([_series(n, "normal", rng), _series(n, "ties", rng), _series(n, "constant", rng)])
    for block in sorted({1, 4, n} & set(range(1, n + 1))):
        idx = stationary_indices(n, block, 203, n + block)
        with _quiet():
            ref = np.vstack([sharpe_per_period(row[idx], axis=1)[0] for row in xs])
            got = boot_sharpes(xs, block, 203, n + block)
        assert _same(ref, got), (n, block)


def test_pcg64_words_are_numpys():
    """The kernel's own PCG64 steps give ``default_rng(seed).bit_generator.random_raw`` word for word."""
    for seed in (0, 1, 12345, 2**40 + 7, 2**63 + 5):
        ref = np.random.default_rng(seed).bit_generator.random_raw(50_000)
        assert np.array_equal(pcg64_words(seed, 50_000), ref), seed


def test_long_streams():
    """Replicates drawing many words (5,000 observations: ~7,500 words each) and many short replicates
    (1 observation: one word each) give the sums of the index matrix drawn by numpy's generator."""
    rng = np.random.default_rng(7)
    for n, reps in ((5000, 60), (1, 100_000), (97, 2000)):
        x = rng.normal(0.0, 0.01, n)
        block = 5 if n > 5 else 1
        idx = stationary_indices(n, block, reps, 11)
        sums, deg = stationary_moments(x[None], block, reps, 11, higher=False)
        xb = x[idx]
        assert _same(sums[0, 0], xb.sum(axis=1))
        d = xb - xb.mean(axis=1, keepdims=True)
        assert _same(sums[0, 1], (d * d).sum(axis=1))
        assert _same(deg[0], np.ptp(xb, axis=1) == 0.0)


def _studentized_reference(a, b, n_boot, seed, block_length=None, chunk=4000):
    """``studentized_bootstrap_pvalue`` before the compiled block parts (main at 6704774), verbatim."""
    pair = np.column_stack([a, b]).astype(np.float64)
    t_obs = pair.shape[0]
    bl = max(2, auto_block_length(pair, how="max")) if block_length is None else int(block_length)
    bl = max(1, min(bl, t_obs // 2))
    n_blocks = t_obs // bl
    mu0 = pair.mean(axis=0)[None]
    g0 = (pair * pair).mean(axis=0)[None]
    diff, _ = _diff_and_grad(mu0, g0)
    _, se, _, _, _ = sharpe_difference_hac(a, b)
    if se == 0.0:
        return 1.0, bl
    stat = abs(float(diff[0])) / se
    y4 = np.column_stack([pair, pair * pair])
    ext = np.vstack([y4, y4[: bl - 1]])
    cs = np.vstack([np.zeros((1, 4)), np.cumsum(ext, axis=0)])
    sums = cs[bl: bl + t_obs] - cs[:t_obs]
    rng = np.random.default_rng(seed)
    exceed = 0
    done = 0
    while done < n_boot:
        r = min(chunk, n_boot - done)
        blk = sums[rng.integers(0, t_obs, size=(r, n_blocks))]
        ybar = blk.sum(axis=1) / (n_blocks * bl)
        d_star, g_star = _diff_and_grad(ybar[:, :2], ybar[:, 2:])
        zeta = (blk - bl * ybar[:, None, :]) / math.sqrt(bl)
        proj = np.matmul(zeta, g_star[:, :, None])[:, :, 0]
        var = np.mean(proj * proj, axis=1) / (n_blocks * bl)
        se_star = np.sqrt(np.maximum(var, 0.0))
        ok = se_star > 0.0
        t_star = np.where(ok, np.abs(d_star - diff[0]) / np.where(ok, se_star, 1.0), np.inf)
        exceed += int(np.sum(t_star >= stat))
        done += r
    return (1.0 + exceed) / (n_boot + 1.0), bl


def test_block_bootstrap_parts_equal_numpys_expressions():
    rng = np.random.default_rng(5)
    for t_obs, bl, r in ((957, 2, 300), (40, 7, 1), (129, 1, 64), (500, 3, 2)):
        sums = rng.standard_t(3, (t_obs, 4)) * 0.01
        ii = rng.integers(0, t_obs, size=(r, t_obs // bl))
        blk = sums[ii]
        ybar = blk.sum(axis=1) / ((t_obs // bl) * bl)
        zeta = (blk - bl * ybar[:, None, :]) / math.sqrt(bl)
        got_ybar, got_zeta = block_bootstrap_parts(sums, ii, bl)
        assert _same(ybar, got_ybar) and _same(zeta, got_zeta), (t_obs, bl, r)


@pytest.mark.parametrize("n_boot,chunk", [(1009, 4000), (1009, 512), (1025, 512), (513, 512), (300, 64)])
def test_studentized_pvalue_equals_the_previous_code_at_any_chunk(n_boot, chunk):
    """Same p-value bits as the previous code with its default chunk of 4,000 (the generator's stream
    does not depend on how the draws are cut, each replicate is computed from its own row), including
    a last chunk of a single replicate."""
    rng = np.random.default_rng(n_boot + chunk)
    cases = []
    for n in (60, 257, 957):
        a = rng.normal(0.001, 0.01, n)
        cases += [(a, 0.6 * a + rng.normal(0.0, 0.008, n)), (a, rng.standard_t(3, n) * 0.01),
                  (a, np.full(n, 0.0))]
    for k, (a, b) in enumerate(cases):
        ref = _studentized_reference(a, b, n_boot, 100 + k)
        got = studentized_bootstrap_pvalue(a, b, n_boot, 100 + k, chunk=chunk)
        assert ref == got and np.float64(ref[0]).tobytes() == np.float64(got[0]).tobytes(), k


_CACHED_RUN = """
import numpy as np
from audit.statistics.bootmoments import block_bootstrap_parts, stationary_moments
from audit.statistics.pbo_kernel import all_half_sharpes
x = np.random.default_rng(0).normal(0.0, 0.01, (2, 300))
s, d = stationary_moments(x, 3, 50, 1)
yb, z = block_bootstrap_parts(np.ones((10, 4)), np.zeros((2, 5), dtype=np.int64), 2)
h = all_half_sharpes(np.array([[0, 1], [0, 2]]), np.ones(4) * 2, np.ones((4, 3)), np.ones((4, 3)) * 2,
                     np.zeros((4, 3)), np.ones((4, 3)), np.zeros(3))
print(s.sum() + d.sum() + yb.sum() + z.sum() + h.sum())
"""


@pytest.mark.slow
def test_kernels_reload_from_the_numba_cache(tmp_path):
    """The compiled kernels run when compiled and again when loaded from ``NUMBA_CACHE_DIR`` (a
    recursive numba function crashed on reload from the cache: the pairwise sum is a loop)."""
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"), PYTHONPATH=root)
    outs = [subprocess.run([sys.executable, "-c", _CACHED_RUN], env=env, capture_output=True, text=True,
                           timeout=600) for _ in range(2)]
    assert [o.returncode for o in outs] == [0, 0], [o.stderr[-2000:] for o in outs]
    assert outs[0].stdout == outs[1].stdout
    assert any((tmp_path / "numba").rglob("*.nbi"))  # the second run had a cache to load


def test_stationary_block_estimates_equal_arch():
    """``auto_block_length``'s estimates without arch's DataFrame: the same floats as
    ``optimal_block_length(...)["stationary"]`` on one and two columns (the paired tests' case)."""
    from arch.bootstrap import optimal_block_length

    from audit.statistics._common import stationary_block_estimates

    rng = np.random.default_rng(12)
    for n in (12, 40, 257, 957, 2190):
        e = rng.standard_t(4, (n, 3)) * 0.01
        ar = e.copy()
        for t in range(1, n):
            ar[t] = 0.5 * ar[t - 1] + e[t]
        for cols in (ar[:, :1], ar[:, :2], ar, np.ascontiguousarray(ar[:, ::2])):
            cols = np.ascontiguousarray(cols)
            with np.errstate(divide="ignore", invalid="ignore"):
                ref = optimal_block_length(cols)["stationary"].to_numpy(dtype=np.float64)
                got = stationary_block_estimates(cols)
            assert _same(ref, got), (n, cols.shape)
