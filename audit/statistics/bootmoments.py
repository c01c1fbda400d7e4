"""Stationary-bootstrap replicates' moments in one compiled pass, without the R x n index matrix.

``stationary_moments(xs, block_length, n_boot, seed)`` gives, for each row ``x`` of ``xs`` (k x n,
the series that share the draws, e.g. the two legs of a paired test) and each replicate ``r``, what
numpy computes on ``xb = x[idx[r]]`` with ``idx = stationary_indices(n, block_length, n_boot, seed)``:

- ``s1 = xb.sum()`` and the constant flag ``ptp(xb) == 0``;
- with ``d = xb - s1 / n``: ``s2 = (d * d).sum()`` and (``higher``) ``s3 = ((d * d) * d).sum()``,
  ``s4 = ((d * d) * (d * d)).sum()``.

Bit for bit: the indices are ``audit.statistics.draws``' (the same words of the generator, the same
bounded draws and block joins, replicate by replicate), and each sum is numpy's ``add.reduce`` over a
contiguous row: the identity ``0.0`` plus numpy's pairwise summation (``pairwise_sum`` in
``numpy/_core/src/umath/loops_utils.h.src``: fewer than 8 values added in order; up to 128 (its
``PW_BLOCKSIZE``) eight partial sums over strides of 8, combined as
``((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))``, then the remainder in order; above that, split
at ``n // 2`` rounded down to a multiple of 8 and both halves summed so). ``np.mean`` is that sum
divided by ``n``. The kernel uses only IEEE-rounded ``+ - * /`` (numba without fastmath: no
contraction into fused multiply-adds), so every value equals numpy's; ``tests/audit/test_bootmoments.py``
pins it to ``x[idx]`` and numpy's reductions across sizes 1..5,000, constant and tied series.

Why: the R x n matrices of indices and gathered values (1,000 x 957 x 8 bytes each for one cell)
stream through memory several times; replicate by replicate, they stay in the first-level cache.
The generator's words are not materialised either: the kernel steps numpy's PCG64 itself
(``_pcg64_next``: the 128-bit LCG step and XSL-RR output of numpy's ``pcg64.h``, from the state that
``default_rng(seed)`` seeds), word for word ``bit_generator.random_raw`` (``tests/audit/test_bootmoments.py``);
``random_raw`` cost about a third of the pass (a serial 128-bit multiply chain written to memory, then
read back). Imported lazily (numba).
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba.core import types
from numba.extending import intrinsic

from audit.statistics.draws import lemire_threshold

_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
_SHIFT11 = np.uint64(11)
#: PCG64's 128-bit multiplier (``PCG_DEFAULT_MULTIPLIER_128`` in numpy's ``pcg64.h``), high and low words
_MUL_HI = np.uint64(0x2360ED051FC65DA4)
_MUL_LO = np.uint64(0x4385DF649FCCF645)
_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U58 = np.uint64(58)
_U63 = np.uint64(63)
_U64 = np.uint64(64)
_M64 = (1 << 64) - 1


@intrinsic
def _umulh(typingctx, a, b):
    """High 64 bits of the 128-bit product of two uint64 (LLVM's i128 multiply: one ``mul`` on x86-64)."""
    if a != types.uint64 or b != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        i64 = args[0].type  # llvmlite's IntType(64), numba's IR layer (not imported here: audit's rule)
        i128 = type(i64)(128)
        prod = builder.mul(builder.zext(args[0], i128), builder.zext(args[1], i128))
        return builder.trunc(builder.lshr(prod, i128(64)), i64)

    return types.uint64(types.uint64, types.uint64), codegen


@numba.njit(cache=True)
def _pcg64_next(s_hi, s_lo, i_hi, i_lo):
    """numpy's PCG64 ``next64`` (``pcg64.h``, XSL-RR 128/64): ``state = state * MUL + inc`` (mod 2**128),
    output ``rotr64(hi ^ lo, hi >> 58)`` of the new state. Returns ``(s_hi, s_lo, word)``."""
    lo = s_lo * _MUL_LO
    hi = _umulh(s_lo, _MUL_LO) + s_lo * _MUL_HI + s_hi * _MUL_LO
    n_lo = lo + i_lo
    n_hi = hi + i_hi + (_U1 if n_lo < lo else _U0)
    v = n_hi ^ n_lo
    rot = n_hi >> _U58
    return n_hi, n_lo, (v >> rot) | (v << ((_U64 - rot) & _U63))


def pcg64_state(seed: int) -> tuple[np.uint64, np.uint64, np.uint64, np.uint64]:
    """``np.random.default_rng(seed)``'s PCG64 state and increment as uint64 halves (hi, lo, hi, lo)."""
    st = np.random.default_rng(seed).bit_generator.state["state"]
    return (np.uint64(st["state"] >> 64), np.uint64(st["state"] & _M64), np.uint64(st["inc"] >> 64),
            np.uint64(st["inc"] & _M64))


@numba.njit(cache=True)
def _pcg64_words(s_hi, s_lo, i_hi, i_lo, n):
    out = np.empty(n, dtype=np.uint64)
    for k in range(n):
        s_hi, s_lo, out[k] = _pcg64_next(s_hi, s_lo, i_hi, i_lo)
    return out


def pcg64_words(seed: int, n: int) -> np.ndarray:
    """The first ``n`` 64-bit words of ``default_rng(seed)`` as the kernel draws them (tests: equal to
    ``bit_generator.random_raw(n)``)."""
    return _pcg64_words(*pcg64_state(seed), int(n))


@numba.njit(cache=True)
def _pw_block(a, lo, n):
    """numpy's ``pairwise_sum`` of ``a[lo:lo + n]`` for ``n <= 128`` (its unsplit cases)."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    m = n - n % 8
    i = 8
    while i < m:
        j = lo + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


def pairwise_program(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numpy's ``pairwise_sum`` recursion over ``n`` values, flattened (it depends on ``n`` alone):
    the leaves' ``(start, length)`` (each at most 128 values, summed by ``_pw_block``) and the
    post-order program that adds them: ``j >= 0`` pushes leaf ``j``'s sum, ``-1`` replaces the two
    top values ``a, b`` (``b`` on top) with ``a + b``."""
    starts: list[int] = []
    lengths: list[int] = []
    prog: list[int] = []

    def walk(lo: int, m: int) -> None:
        if m <= 128:
            prog.append(len(starts))
            starts.append(lo)
            lengths.append(m)
            return
        m2 = m // 2
        m2 -= m2 % 8
        walk(lo, m2)
        walk(lo + m2, m - m2)
        prog.append(-1)

    walk(0, int(n))
    return (np.array(starts, dtype=np.int64), np.array(lengths, dtype=np.int64),
            np.array(prog, dtype=np.int64))


@numba.njit(cache=True)
def _run_program(prog, leaf, stack):
    """The sum of ``leaf`` (one value per leaf) in the order of ``prog`` (``pairwise_program``)."""
    top = 0
    for op in prog:
        if op >= 0:
            stack[top] = leaf[op]
            top += 1
        else:
            stack[top - 2] = stack[top - 2] + stack[top - 1]
            top -= 1
    return stack[0]


@numba.njit(cache=True)
def _dev_block(a, lo, n, mean, higher, out):
    """``_pw_block`` of ``q = d * d`` and (``higher``) of ``q * d`` and ``q * q``, ``d = a - mean``
    over ``a[lo:lo + n]`` (``n <= 128``), all three in one pass: ``out[0:3]``."""
    if n < 8:
        r2 = 0.0
        r3 = 0.0
        r4 = 0.0
        for i in range(n):
            d = a[lo + i] - mean
            q = d * d
            r2 += q
            if higher:
                r3 += q * d
                r4 += q * q
        out[0], out[1], out[2] = r2, r3, r4
        return
    d0 = a[lo] - mean
    d1 = a[lo + 1] - mean
    d2 = a[lo + 2] - mean
    d3 = a[lo + 3] - mean
    d4 = a[lo + 4] - mean
    d5 = a[lo + 5] - mean
    d6 = a[lo + 6] - mean
    d7 = a[lo + 7] - mean
    q0, q1, q2, q3, q4, q5, q6, q7 = d0 * d0, d1 * d1, d2 * d2, d3 * d3, d4 * d4, d5 * d5, d6 * d6, d7 * d7
    a0, a1, a2, a3, a4, a5, a6, a7 = q0, q1, q2, q3, q4, q5, q6, q7
    b0, b1, b2, b3 = q0 * d0, q1 * d1, q2 * d2, q3 * d3
    b4, b5, b6, b7 = q4 * d4, q5 * d5, q6 * d6, q7 * d7
    c0, c1, c2, c3 = q0 * q0, q1 * q1, q2 * q2, q3 * q3
    c4, c5, c6, c7 = q4 * q4, q5 * q5, q6 * q6, q7 * q7
    m = n - n % 8
    i = 8
    while i < m:
        j = lo + i
        d0 = a[j] - mean
        d1 = a[j + 1] - mean
        d2 = a[j + 2] - mean
        d3 = a[j + 3] - mean
        d4 = a[j + 4] - mean
        d5 = a[j + 5] - mean
        d6 = a[j + 6] - mean
        d7 = a[j + 7] - mean
        q0, q1, q2, q3 = d0 * d0, d1 * d1, d2 * d2, d3 * d3
        q4, q5, q6, q7 = d4 * d4, d5 * d5, d6 * d6, d7 * d7
        a0 += q0
        a1 += q1
        a2 += q2
        a3 += q3
        a4 += q4
        a5 += q5
        a6 += q6
        a7 += q7
        if higher:
            b0 += q0 * d0
            b1 += q1 * d1
            b2 += q2 * d2
            b3 += q3 * d3
            b4 += q4 * d4
            b5 += q5 * d5
            b6 += q6 * d6
            b7 += q7 * d7
            c0 += q0 * q0
            c1 += q1 * q1
            c2 += q2 * q2
            c3 += q3 * q3
            c4 += q4 * q4
            c5 += q5 * q5
            c6 += q6 * q6
            c7 += q7 * q7
        i += 8
    r2 = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
    r3 = ((b0 + b1) + (b2 + b3)) + ((b4 + b5) + (b6 + b7))
    r4 = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7))
    while i < n:
        d = a[lo + i] - mean
        q = d * d
        r2 += q
        r3 += q * d
        r4 += q * q
        i += 1
    out[0], out[1], out[2] = r2, r3, r4


@numba.njit(cache=True)
def _replicates(state, n_boot, cont, threshold, xs, higher, starts, lengths, prog, out, deg):
    """Every replicate: ``out[k, :, r]`` = ``(s1, s2, s3, s4)`` of row ``k``, ``deg[k, r]`` its constant
    flag. ``state``: ``pcg64_state(seed)``; the words are drawn in the order numpy's calls draw them."""
    n_series, n_obs = xs.shape
    n = np.uint64(n_obs)
    s_hi, s_lo, i_hi, i_lo = state[0], state[1], state[2], state[3]
    kept = _U0  # the kept high half of the last 64-bit word a 32-bit draw split (numpy's pcg64_next32)
    has_kept = False
    n_leaves = starts.size
    idx = np.empty(n_obs, dtype=np.int64)
    unif = np.empty(n_obs, dtype=np.int64)
    vals = np.empty(n_obs)
    leaf = np.empty((4, n_leaves))
    three = np.empty(3)
    stack = np.empty(prog.size + 1)
    for r in range(n_boot):
        if n_obs > 1:  # integers(n_obs, size=n_obs): nothing drawn for n_obs == 1
            for i in range(n_obs):
                while True:  # Lemire's bounded draw (numpy's buffered_bounded_lemire_uint32)
                    if has_kept:
                        v = kept
                        has_kept = False
                    else:
                        s_hi, s_lo, w = _pcg64_next(s_hi, s_lo, i_hi, i_lo)
                        v = w & _MASK32
                        kept = w >> _SHIFT32
                        has_kept = True
                    m = v * n
                    if (m & _MASK32) >= threshold:
                        break
                idx[i] = np.int64(m >> _SHIFT32)
        else:
            idx[0] = 0
        # random(n_obs): a fresh word per uniform (the first one, row 0's, always starts a block).
        # arch's stationary_bootstrap_sample: a uniform above p continues the block (the previous index
        # plus one, wrapping at n), else the row's own start begins one. Without a branch: ``ls`` is
        # the current block's first row (its index is still its start), the index ``(start + offset)
        # mod n`` with ``offset = i - ls < n``
        # (the words first, then the joins: in one loop the compiler turned the select into a branch,
        # mispredicted on a third of the rows at block length 3)
        for i in range(n_obs):
            s_hi, s_lo, w = _pcg64_next(s_hi, s_lo, i_hi, i_lo)
            unif[i] = np.int64(w >> _SHIFT11)
        ls = 0
        for i in range(1, n_obs):
            ls = ls if unif[i] > cont else i  # u > p (see the wrapper)
            v2 = idx[ls] + (i - ls)
            idx[i] = v2 - n_obs if v2 >= n_obs else v2
        for k in range(n_series):
            x = xs[k]
            lo_v = x[idx[0]]
            hi_v = lo_v
            for i in range(n_obs):
                val = x[idx[i]]
                vals[i] = val
                if val < lo_v:
                    lo_v = val
                if val > hi_v:
                    hi_v = val
            for j in range(n_leaves):
                leaf[0, j] = _pw_block(vals, starts[j], lengths[j])
            s1 = 0.0 + _run_program(prog, leaf[0], stack)
            mean = s1 / n_obs
            for j in range(n_leaves):
                _dev_block(vals, starts[j], lengths[j], mean, higher, three)
                leaf[1, j], leaf[2, j], leaf[3, j] = three[0], three[1], three[2]
            out[k, 0, r] = s1
            out[k, 1, r] = 0.0 + _run_program(prog, leaf[1], stack)
            if higher:
                out[k, 2, r] = 0.0 + _run_program(prog, leaf[2], stack)
                out[k, 3, r] = 0.0 + _run_program(prog, leaf[3], stack)
            deg[k, r] = hi_v == lo_v


def stationary_moments(xs: np.ndarray, block_length: int, n_boot: int, seed: int,
                       higher: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``xs`` (k x n float64, finite) and replicate of the stationary bootstrap of
    ``stationary_indices(n, block_length, n_boot, seed)``: ``sums`` (k x 4 x n_boot: ``s1, s2, s3, s4``
    of the module docstring; ``s3``/``s4`` left 0 unless ``higher``) and ``degenerate`` (k x n_boot
    bool, the replicate is constant)."""
    xs = np.ascontiguousarray(np.atleast_2d(np.asarray(xs, dtype=np.float64)))
    n_obs, n_boot = int(xs.shape[1]), int(n_boot)
    if not 1 <= n_obs < 2**32 - 1:
        raise ValueError(f"n_obs: expected 1 <= n_obs < 2**32 - 1, got {n_obs}")
    p = 1.0 / block_length  # as arch's StationaryBootstrap
    out = np.zeros((xs.shape[0], 4, n_boot))
    deg = np.zeros((xs.shape[0], n_boot), dtype=np.bool_)
    if n_boot == 0:
        return out, deg
    thr = np.uint64(lemire_threshold(n_obs))
    # a uniform u = k * 2**-53 (k = word >> 11 < 2**53, exact) continues a block when u > p, that is
    # k > p * 2**53 (exact: a power-of-two scaling), that is k > floor(p * 2**53): compared as integers
    cont = int(math.floor(p * 9007199254740992.0))
    starts, lengths, prog = pairwise_program(n_obs)
    _replicates(np.array(pcg64_state(seed), dtype=np.uint64), n_boot, cont, thr, xs, bool(higher), starts,
                lengths, prog, out, deg)
    return out, deg


@numba.njit(cache=True)
def _gather_blocks(sums, ii, blk, tot):
    """``blk = sums[ii]`` (r x l x c) and ``tot = blk.sum(axis=1)``: numpy reduces that middle axis
    in order, from 0.0 (``tests/audit/test_bootmoments.py`` pins it)."""
    r, n_blocks = ii.shape
    c = sums.shape[1]
    for i in range(r):
        for k in range(c):
            tot[i, k] = 0.0
        for j in range(n_blocks):
            row = sums[ii[i, j]]
            for k in range(c):
                v = row[k]
                blk[i, j, k] = v
                tot[i, k] += v


@numba.njit(cache=True)
def _centre_blocks(blk, ybar, bl, root):
    """``blk = (blk - bl * ybar[:, None, :]) / root`` in place, numpy's elementwise steps."""
    r, n_blocks, c = blk.shape
    for i in range(r):
        for k in range(c):
            m = bl * ybar[i, k]
            for j in range(n_blocks):
                blk[i, j, k] = (blk[i, j, k] - m) / root


def block_bootstrap_parts(sums: np.ndarray, ii: np.ndarray, bl: int) -> tuple[np.ndarray, np.ndarray]:
    """Of the circular block sums ``sums`` (T x c) and the drawn block starts ``ii`` (r x l): the
    replicates' means ``ybar = sums[ii].sum(axis=1) / (l * bl)`` and the centred, scaled blocks
    ``zeta = (sums[ii] - bl * ybar[:, None, :]) / sqrt(bl)``, the same values as those numpy
    expressions, without their r x l x c temporaries."""
    sums = np.ascontiguousarray(sums, dtype=np.float64)
    ii = np.ascontiguousarray(ii, dtype=np.int64)
    r, n_blocks = ii.shape
    blk = np.empty((r, n_blocks, sums.shape[1]))
    tot = np.empty((r, sums.shape[1]))
    _gather_blocks(sums, ii, blk, tot)
    ybar = tot / (n_blocks * bl)
    _centre_blocks(blk, ybar, bl, math.sqrt(bl))
    return ybar, blk


__all__ = ["block_bootstrap_parts", "pairwise_program", "stationary_moments"]
