"""The stationary bootstrap's row indices in one compiled pass over numpy's own random stream.

``stationary_indices`` draws, replicate by replicate, what ``arch.bootstrap.StationaryBootstrap``
draws with ``seed=np.random.default_rng(seed)``: ``n_obs`` block starts
(``Generator.integers(n_obs, size=n_obs, dtype=int64)``), then ``n_obs`` uniforms
(``Generator.random(n_obs)``), joined into blocks by arch's sampler (a new block where
``u[i] <= p = 1 / block_length``, else the next row, wrapping). The loop of those three calls per
replicate cost about 15 ms per 1,000 x 500 draws, most of it numpy's per-call overhead
(``integers`` computes ``np.prod(size)`` in Python on every call), and the post-unit statistics
draw over a thousand such matrices.

Here the generator's 64-bit words are taken in one ``bit_generator.random_raw`` call and turned into
the same integers and uniforms by numpy's own algorithms, in the same order:

- ``integers`` below 2**32: Lemire's bounded draw on 32-bit words (numpy ``distributions.c``,
  ``buffered_bounded_lemire_uint32``: ``m = u32 * n``, redraw while ``m mod 2**32 < (2**32 - n) mod n``,
  result ``m >> 32``); PCG64 serves a 32-bit word as the low half of a fresh 64-bit word and keeps
  the high half for the next 32-bit request (``pcg64_next32``), across calls: a replicate that used an
  odd number of halves leaves one for the next replicate's first start;
- ``random``: ``(word >> 11) * 2**-53`` from a fresh 64-bit word (``next_double``), leaving a kept
  half alone;
- ``n_obs == 1``: ``integers(1)`` draws nothing (numpy returns 0 for an empty range).

``random_raw`` reads the same words as those calls (``next_raw`` advances the same state and does not
touch the kept half). ``tests/audit/test_draws.py`` pins every index to the per-replicate loop (kept
there as the reference) and the bounded draw to ``Generator.integers`` on bounds whose rejection rate
is near one half.
"""
from __future__ import annotations

import numba
import numpy as np

_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
_SHIFT11 = np.uint64(11)
_TWO_M53 = 1.0 / 9007199254740992.0  # 2**-53, numpy's next_double


@numba.njit(cache=True)
def _fill(words, n_obs, n_boot, p, threshold, out):
    """Every replicate's indices into ``out`` (``n_boot x n_obs`` int64) from ``words``: the number
    of words used, or -1 when they ran out. ``threshold``: ``lemire_threshold(n_obs)``."""
    n = np.uint64(n_obs)
    n_words = words.size
    kept = np.uint64(0)  # the kept high half of the last 64-bit word a 32-bit draw split
    has_kept = False
    pos = 0
    for r in range(n_boot):
        row = out[r]
        if n_obs > 1:
            for i in range(n_obs):
                while True:  # Lemire's bounded draw (numpy's buffered_bounded_lemire_uint32)
                    if has_kept:
                        v = kept
                        has_kept = False
                    else:
                        if pos >= n_words:
                            return -1
                        w = words[pos]
                        pos += 1
                        v = w & _MASK32
                        kept = w >> _SHIFT32
                        has_kept = True
                    m = v * n
                    if (m & _MASK32) >= threshold:
                        break
                row[i] = np.int64(m >> _SHIFT32)
        else:
            row[0] = 0
        if pos + n_obs > n_words:
            return -1
        for i in range(n_obs):
            u = np.float64(words[pos + i] >> _SHIFT11) * _TWO_M53
            if i > 0 and u > p:  # arch's stationary_bootstrap_sample: continue the block
                nxt = row[i - 1] + 1
                row[i] = 0 if nxt == n_obs else nxt
        pos += n_obs
    return pos


def lemire_threshold(n: int) -> int:
    """numpy's rejection threshold of a bounded 32-bit draw in ``[0, n)``: ``(2**32 - n) mod n``."""
    return (0xFFFFFFFF - (n - 1)) % n


def stationary_indices(n_obs: int, block_length: int, n_boot: int, seed: int) -> np.ndarray:
    """``n_boot x n_obs`` int64 row indices of a seeded stationary bootstrap (Politis & Romano 1994),
    mean block length ``block_length``: exactly arch's ``StationaryBootstrap`` draws with
    ``seed=np.random.default_rng(seed)`` (see the module docstring)."""
    n_obs, n_boot = int(n_obs), int(n_boot)
    if not 1 <= n_obs < 2**32 - 1:
        raise ValueError(f"n_obs: expected 1 <= n_obs < 2**32 - 1, got {n_obs}")
    p = 1.0 / block_length  # as arch's StationaryBootstrap
    out = np.empty((n_boot, n_obs), dtype=np.int64)
    if n_boot == 0:
        return out
    thr = np.uint64(lemire_threshold(n_obs))
    # halves for the starts (one spare per replicate for an odd count) + a word per uniform; a
    # rejection needs one more half, rare (rate below n / 2**32): draw again with room when short
    need = n_boot * ((n_obs + 1) // 2 + n_obs) + 64
    while True:
        words = np.random.default_rng(seed).bit_generator.random_raw(need)
        if _fill(words, n_obs, n_boot, p, thr, out) >= 0:
            return out
        need *= 2


__all__ = ["lemire_threshold", "stationary_indices"]
