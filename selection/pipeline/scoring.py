"""Stage 3, Inference (``ConvictionScorer``): SELECTION_SPEC section 3.

Probability mappings act on a whole column at once; NaN is ignored for ranges, means and stds and
maps to p = 0.01 afterwards. Log-MPS: ``alpha = exp(sum_f w_f ln p_f)`` summed in the order of
``config.LOGMPS_COMPONENTS``; a NaN alpha becomes 0. Challengers (``ridge.py``) write their own
column; every score is in [0, 1] and higher is better.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
import pandas as pd
from scipy.special import ndtr

from selection.config import LOGMPS_COMPONENTS, SelectionConfig
from selection.pipeline.context import InferenceOutputs, SelectionContext
from selection.ranks import average_ranks

P_MISSING = 0.01
P_FLOOR = 0.001
CDF_EPS = 1e-9


def p_rank(x: np.ndarray, descending: bool = False) -> np.ndarray:
    """``p = 0.01 + 0.99 (q - 1) / (n - 1)`` with q the average rank among the non-NaN values
    (reversed order when ``descending``); p = 1 when n = 1; NaN -> 0.01."""
    x = np.asarray(x, dtype=np.float64)
    ok = ~np.isnan(x)
    out = np.full(x.shape, P_MISSING)
    n = int(ok.sum())
    if n == 0:
        return out
    if n == 1:
        out[ok] = 1.0
        return out
    q = average_ranks(-x[ok] if descending else x[ok])
    out[ok] = 0.01 + 0.99 * (q - 1.0) / (n - 1)
    return out


def p_cdf(x: np.ndarray) -> np.ndarray:
    """All non-NaN values in [0, 1]: ``clip(x, 0.001, 1)``; else ``clip(Phi(z), 0.001, 1)`` with
    ``z = (x - mean) / (std_ddof1 + 1e-9)``; NaN -> 0.01. With one value std counts as 0."""
    x = np.asarray(x, dtype=np.float64)
    ok = ~np.isnan(x)
    out = np.full(x.shape, P_MISSING)
    if not ok.any():
        return out
    v = x[ok]
    if v.min() >= 0.0 and v.max() <= 1.0:
        out[ok] = np.clip(v, P_FLOOR, 1.0)
        return out
    sd = float(np.std(v, ddof=1)) if v.size > 1 else 0.0
    z = (v - v.mean()) / (sd + CDF_EPS)
    out[ok] = np.clip(ndtr(z), P_FLOOR, 1.0)
    return out


MAPPINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "rank": p_rank,
    "rank_desc": lambda x: p_rank(x, descending=True),
    "cdf": p_cdf,
}


def log_mps(features: pd.DataFrame, weights: dict[str, float]) -> np.ndarray:
    """Log-MPS alpha per row of ``features`` (in [0, 1]; NaN alpha -> 0)."""
    acc = np.zeros(len(features))
    for name, (mapping, _) in LOGMPS_COMPONENTS.items():
        w = weights.get(name, 0.0)
        if w == 0.0:
            continue
        acc = acc + w * np.log(MAPPINGS[mapping](features[name].to_numpy(dtype=np.float64)))
    alpha = np.exp(acc)
    return np.where(np.isnan(alpha), 0.0, alpha)


@dataclass(frozen=True)
class ConvictionScorer:
    """Inference: the champion Log-MPS and every configured challenger, in one pass."""

    config: SelectionConfig
    champion: str = "log_mps"
    name: ClassVar[str] = "scoring"
    reads: ClassVar[tuple[str, ...]] = ("view", "feature_store", "returns", "raw_pool")
    writes: ClassVar[tuple[str, ...]] = ("inference_outputs", "audit_trail")

    def __call__(self, ctx: SelectionContext) -> SelectionContext:
        from selection.pipeline.ridge import CHALLENGERS  # the challenger registry

        fs = ctx.feature_store
        cols = {self.champion: log_mps(fs, self.config.effective_weights())}
        roles = {self.champion: "champion"}
        diag: dict[str, dict] = {self.champion: {"weights": self.config.effective_weights()}}
        for name in self.config.challengers:
            if name not in CHALLENGERS:
                from contracts.errors import ConfigError
                raise ConfigError(f"unknown challenger scorer {name!r}; known: {sorted(CHALLENGERS)}")
            scores, info = CHALLENGERS[name](ctx, self.config)
            cols[name], roles[name], diag[name] = scores, "challenger", info
        table = pd.DataFrame(cols, index=fs.index)
        data = {n: {"role": roles[n], "mean_alpha": float(table[n].mean()) if len(table) else 0.0,
                    "max_alpha": float(table[n].max()) if len(table) else 0.0} for n in table.columns}
        out = InferenceOutputs(scores=table, roles=roles, diagnostics=diag)
        return ctx.model_copy(update={"inference_outputs": out,
                                      "audit_trail": ctx.event(self.name, "scored", data)})
