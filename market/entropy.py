"""Permutation entropy and its noise-percentile (SELECTION_SPEC section 2, "entropy").

Raw permutation entropy (order 5, delay 1) is the Shannon entropy of the frequencies of ordinal
patterns of 5 consecutive values, divided by ``ln(5!)``; windows containing a NaN are skipped. It is
biased low on short series, so features use its **percentile among iid-noise series of the same
effective length** (number of valid windows + order - 1). The null distribution is simulated once per
length with a fixed seed (uniform noise on [0, 1], 20,000 series by default) and kept in an explicit
``EntropyNullCache`` passed by the caller (no hidden module state; hits are counted). With a
``store`` folder the tables also persist on disk, shared by processes and runs (~40 ms of simulation
each at the default size; a worker of the full tournament preset meets a few hundred lengths): one
``.npy`` file per table, its name the SHA-256 of (length, order, series, seed, the numpy version and
this module's source, so that a changed simulation or generator never reads an old table), its
content checked against a stored checksum; a missing, unreadable or damaged file is simulated again
and rewritten (written to a temporary file and renamed). A stored table is the simulated one bit
for bit.

Percentile convention: mid-rank, ``(#null < raw + 0.5 #null == raw) / n`` (0..1). Raw entropy takes
discrete values on short series, so counting ties fully (``<=``) would lift iid noise above 0.5 (0.533
at 60 bars) and bias the hardening test, which assumes noise averages 0.5. Missing (fewer than
``min_windows`` valid windows) = 1.0, the worst.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

ORDER = 5
NULL_SERIES = 20_000
NULL_SEED = 20_240_521
MIN_WINDOWS = 10
#: what the stored tables depend on besides their parameters: this module's code (the simulation)
#: and numpy's generator (``EntropyNullCache.store``)
_SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def _pattern_codes(windows: np.ndarray) -> np.ndarray:
    """Ordinal-pattern code of each window (last axis = the ``order`` values), stable on ties:
    ``sum_k perm[k] * order**k`` with ``perm`` the stable argsort of the window (the definition;
    ``_series_codes`` computes the same integers faster)."""
    order = windows.shape[-1]
    perm = np.argsort(windows, axis=-1, kind="stable")
    return (perm * (order ** np.arange(order))).sum(axis=-1)


@lru_cache(maxsize=4)
def _code_table(order: int) -> tuple[tuple[tuple[int, int], ...], np.ndarray]:
    """Pairs ``(a, b)``, ``a < b``, of window positions and the table mapping the bits
    ``[x_a <= x_b] << pair index`` of a window to its ``_pattern_codes`` code. A stable sort puts
    ``a`` before ``b`` exactly when ``x_a <= x_b``, so these bits fix the stable order; the table is
    filled from every window of values in ``0..order-1`` (every order with ties occurs there) by
    ``_pattern_codes`` itself. A pure function of ``order`` (read-only result, safe to memoise)."""
    pairs = tuple((a, b) for a in range(order) for b in range(a + 1, order))
    vals = np.array(list(itertools.product(range(order), repeat=order)), dtype=np.float64)
    bits = np.zeros(len(vals), dtype=np.int64)
    for s, (a, b) in enumerate(pairs):
        bits |= (vals[:, a] <= vals[:, b]).astype(np.int64) << s
    table = np.full(1 << len(pairs), -1, dtype=np.int64)
    table[bits] = _pattern_codes(vals)
    table.setflags(write=False)
    return pairs, table


def _series_codes(x: np.ndarray, order: int) -> np.ndarray:
    """``_pattern_codes`` of every window ``x[:, t:t+order]`` of each row of ``x`` (series x bars):
    the same integers from ``order*(order-1)/2`` comparisons of shifted rows and one table look-up
    (about 4x faster than a stable argsort per window)."""
    pairs, table = _code_table(order)
    m = x.shape[1] - order + 1
    cols = [x[:, a:a + m] for a in range(order)]
    bits = np.zeros((x.shape[0], m), dtype=np.int32)
    for s, (a, b) in enumerate(pairs):
        bits |= (cols[a] <= cols[b]).astype(np.int32) << s
    return table[bits]


def _entropy_from_codes(codes: np.ndarray, valid: np.ndarray, order: int) -> np.ndarray:
    """Normalised Shannon entropy per row of ``codes`` over its ``valid`` windows."""
    rows, m = codes.shape
    big = order ** order
    c = np.where(valid, codes, big)  # invalid windows get a code that sorts last and is dropped
    c = np.sort(c, axis=1)
    n_valid = valid.sum(axis=1)
    # run lengths of equal codes per row, via boundaries in the flattened array
    flat = c.ravel()
    row_id = np.repeat(np.arange(rows), m)
    start = np.ones(flat.shape, dtype=bool)
    start[1:] = (flat[1:] != flat[:-1]) | (row_id[1:] != row_id[:-1])
    starts = np.flatnonzero(start)
    lengths = np.diff(np.append(starts, flat.size))
    keep = flat[starts] != big
    starts, lengths = starts[keep], lengths[keep]
    r = row_id[starts]
    with np.errstate(divide="ignore", invalid="ignore"):
        p = lengths / n_valid[r]
        h = np.bincount(r, weights=-p * np.log(p), minlength=rows)
    h = h / math.log(math.factorial(order))
    h[n_valid == 0] = np.nan
    return h


def permutation_entropy(x: np.ndarray, order: int = ORDER) -> tuple[np.ndarray, np.ndarray]:
    """Raw normalised permutation entropy of each column of ``x`` (bars x series), delay 1.

    Returns ``(entropy, n_windows)``: entropy in [0, 1] (NaN when no valid window) and the number of
    valid (NaN-free) windows per column.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    n, k = x.shape
    if n < order:
        return np.full(k, np.nan), np.zeros(k, dtype=np.int64)
    w = sliding_window_view(x.T, order, axis=1)  # (k, n-order+1, order)
    valid = ~np.isnan(w).any(axis=-1)
    if order <= 6:  # the look-up table has 2**(order*(order-1)/2) entries
        codes = _series_codes(np.where(np.isnan(x.T), 0.0, x.T), order)  # NaN read as 0 (window dropped)
    else:
        codes = _pattern_codes(np.where(np.isnan(w), 0.0, w))
    return _entropy_from_codes(codes, valid, order), valid.sum(axis=1)


@dataclass
class EntropyNullCache:
    """Sorted null distributions of raw permutation entropy, keyed by (length, order, n, seed)."""

    n_series: int = NULL_SERIES
    seed: int = NULL_SEED
    order: int = ORDER
    tables: dict[tuple[int, int, int, int], np.ndarray] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0
    #: folder of the persistent tables (module docstring); None keeps them in this process only
    store: Path | None = None

    def null(self, length: int) -> np.ndarray:
        """Sorted raw entropies of ``n_series`` uniform iid series of ``length`` values."""
        key = (int(length), self.order, self.n_series, self.seed)
        if key in self.tables:
            self.hits += 1
            return self.tables[key]
        self.misses += 1
        out = self._load(key) if self.store is not None else None
        if out is None:
            out = self._simulate(int(length))
            if self.store is not None:
                self._save(key, out)
        self.tables[key] = out
        return out

    def _simulate(self, length: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, length])
        out = np.empty(self.n_series)
        chunk = max(1, 2_000_000 // max(length, 1))
        for s in range(0, self.n_series, chunk):
            m = min(chunk, self.n_series - s)
            out[s:s + m] = permutation_entropy(rng.random((length, m)), self.order)[0]
        out.sort()
        return out

    def path(self, key: tuple[int, int, int, int]) -> Path:
        """The stored table's file for ``key`` = (length, order, n_series, seed)."""
        desc = json.dumps({"key": list(key), "numpy": np.__version__, "source": _SOURCE_DIGEST})
        return Path(self.store) / f"{hashlib.sha256(desc.encode()).hexdigest()}.npz"

    def _load(self, key: tuple[int, int, int, int]) -> np.ndarray | None:
        path = self.path(key)
        try:
            with np.load(path, allow_pickle=False) as z:
                table, digest = z["table"], str(z["sha256"][()])
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile):
            return None
        if (table.dtype != np.float64 or table.shape != (self.n_series,)
                or hashlib.sha256(table.tobytes()).hexdigest() != digest):
            return None
        return table

    def _save(self, key: tuple[int, int, int, int], table: np.ndarray) -> None:
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez(f, table=table, sha256=np.array(hashlib.sha256(table.tobytes()).hexdigest()))
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except OSError:
            return  # an unwritable folder only costs the simulation

    def percentile(self, raw: np.ndarray, n_windows: np.ndarray, min_windows: int = MIN_WINDOWS) -> np.ndarray:
        """Mid-rank percentile of each raw entropy in the null at its own effective length.

        ``n_windows`` valid windows correspond to a series of ``n_windows + order - 1`` values.
        Missing (NaN raw or fewer than ``min_windows`` windows) gives 1.0.
        """
        raw = np.asarray(raw, dtype=np.float64)
        nw = np.asarray(n_windows, dtype=np.int64)
        out = np.ones(raw.shape)
        ok = np.isfinite(raw) & (nw >= min_windows)
        for m in np.unique(nw[ok]):
            sel = ok & (nw == m)
            table = self.null(int(m) + self.order - 1)
            lo = np.searchsorted(table, raw[sel], side="left")
            hi = np.searchsorted(table, raw[sel], side="right")
            out[sel] = 0.5 * (lo + hi) / table.size  # mid-rank: ties split, noise averages 0.5
        return out
