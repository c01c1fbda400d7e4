"""Average ranks (``scipy.stats.rankdata(x, method="average")``) without scipy's per-call overhead.

``rankdata`` goes through the array-API dispatch and its NaN-policy decorator (~60 us a call); the
v4 scorers and the v3.4 probabilities rank ~70 short vectors per unit. The ranks are half-integers
(``first position + (ties - 1) / 2``), exact in float64, so any correct computation gives the same
bits as scipy's; ties are equal values under ``==`` after a stable sort, as in scipy (``-0.0`` ties
with ``0.0``). Inputs hold no NaN (the callers rank the non-NaN values only).
``tests/selection/test_ranks.py`` compares with ``rankdata``.
"""
from __future__ import annotations

import numpy as np


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based average ranks of the 1-D float array ``x`` (no NaN): ``rankdata(x, "average")``."""
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    order = np.argsort(x, kind="stable")
    y = x[order]
    first = np.empty(n, dtype=bool)
    first[:1] = True
    np.not_equal(y[:-1], y[1:], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.diff(starts, append=n)
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat((starts + 1).astype(np.float64) + (counts - 1) / 2, counts)
    return ranks
