"""Challenger scorers (SELECTION_SPEC section 3, "Champion/challenger").

``ridge``: a cross-sectional ridge regression of forward returns on rank-transformed price
features, learnt from the last ``ridge.history`` bars up to the cut-off (504 by default, whatever
the allocation train window; ``config.RidgeConfig`` documents the sub-windows; the target window of
every sub-window ends before the cut-off row). Transform: a feature column is
mapped with ``p_rank`` and centred (``p - 0.505``, so NaN -> 0, neutral); the target likewise.
The fit pools every sub-window's rows (candidates with >= 10 valid returns in the sub-window and a
finite forward return): ``beta = (Z'Z + alpha n I)^-1 Z'y`` (no intercept: both sides are centred).
The score at the cut-off is ``p_rank`` of ``Z_now beta`` (in [0.01, 1], higher is better). With fewer
than ``len(features) + 2`` rows the fit is ``unfitted``: beta = 0 and every candidate scores 0.505
(the challenger's selection is then marked degenerate by ``results.v4_result``).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from selection.config import SelectionConfig
from selection.pipeline.context import SelectionContext
from selection.pipeline.features import price_features
from selection.pipeline.ingestion import direction_adjusted_returns
from selection.pipeline.scoring import p_rank

CENTRE = 0.505  # midpoint of p_rank's range [0.01, 1]
MIN_ROW_VALUES = 10


def _ztable(feats: dict[str, np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    cols = []
    for n in names:
        v = np.asarray(feats[n], dtype=np.float64)
        z = p_rank(v) - CENTRE
        cols.append(np.where(np.isnan(v), 0.0, z))
    return np.column_stack(cols) if cols else np.zeros((0, 0))


def history_returns(ctx: SelectionContext, config: SelectionConfig) -> np.ndarray:
    """Direction-adjusted returns of the pool over the last ``ridge.history`` bars up to the
    cut-off (bars x candidates, the pool's column order); fewer rows when the panel is shorter."""
    closes = ctx.view.closes
    rows = min(config.ridge.history, len(closes))
    return direction_adjusted_returns(closes, ctx.raw_pool, rows).to_numpy(dtype=np.float64)


def training_rows(x: np.ndarray, periods_per_year: int, config: SelectionConfig) -> tuple[np.ndarray, np.ndarray, int]:
    """Stacked (Z, y) over the sub-windows of ``x`` (bars x candidates; last row = the cut-off)."""
    rc = config.ridge
    t = x.shape[0]
    zs, ys, used = [], [], 0
    for j in range(rc.n_windows):
        b = (t - 1) - rc.horizon * (j + 1)  # cut-off = row t-1; targets end before it
        a = max(0, b - config.feature_lookback)
        if b - a < rc.min_bars:
            continue
        sub = x[a:b]
        feats = price_features(sub, periods_per_year, None)
        fwd_block = x[b:b + rc.horizon]
        with np.errstate(invalid="ignore"):
            fwd = np.prod(1.0 + fwd_block, axis=0) - 1.0  # NaN when any return is missing
        ok = np.isfinite(fwd) & (feats["n_valid"] >= MIN_ROW_VALUES)
        if ok.sum() < 2:
            continue
        z = _ztable({k: v[ok] for k, v in feats.items()}, rc.features)
        y = p_rank(fwd[ok]) - CENTRE
        zs.append(z)
        ys.append(y)
        used += 1
    if not zs:
        return np.zeros((0, len(rc.features))), np.zeros(0), 0
    return np.vstack(zs), np.concatenate(ys), used


def ridge_scores(ctx: SelectionContext, config: SelectionConfig) -> tuple[np.ndarray, dict]:
    """Scores of the ``ridge`` challenger for the context's pool, and its diagnostics."""
    x = history_returns(ctx, config)
    p = ctx.view.calendar.periods_per_year
    names = config.ridge.features
    z, y, used = training_rows(x, p, config)
    n = z.shape[0]
    if n < len(names) + 2:
        beta = np.zeros(len(names))
        status = "unfitted"
    else:
        a = z.T @ z + config.ridge.alpha * n * np.eye(len(names))
        beta = np.linalg.solve(a, z.T @ y)
        status = "fitted"
    fs = ctx.feature_store
    znow = _ztable({k: fs[k].to_numpy(dtype=np.float64) for k in names}, names)
    pred = znow @ beta if len(fs) else np.zeros(0)
    scores = p_rank(pred) if len(fs) else np.zeros(0)
    info = {"status": status, "n_obs": int(n), "n_windows": int(used), "history_bars": int(x.shape[0]),
            "min_obs": len(names) + 2,
            "coef": {k: float(v) for k, v in zip(names, beta)}}
    return scores, info


CHALLENGERS: dict[str, Callable[[SelectionContext, SelectionConfig], tuple[np.ndarray, dict]]] = {
    "ridge": ridge_scores,
}
