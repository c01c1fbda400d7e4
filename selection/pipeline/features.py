"""Stage 2, Feature Engineering (``FeatureGenerator``): SELECTION_SPEC section 2.

Features are computed on the last ``min(L, train bars)`` rows of the direction-adjusted train returns
``x``, whole matrix at once (``kernels.py``). Feature-store columns (candidate id x feature):

- price features: ``momentum`` (annualised mean, P from the calendar), ``stability``,
  ``volatility`` (annualised, fraction; the tail veto reads it), ``entropy`` (noise percentile,
  ``market.entropy``; missing = 1.0) and ``entropy_raw`` (raw normalised entropy, NaN when missing),
  ``efficiency``, ``hurst``, ``hurst_clean``, ``skew``, ``kurtosis``, ``cvar``, ``tail_gain``,
  ``antifragility``, ``fragility``, ``n_valid`` (valid returns in the lookback);
- history: ``survival`` (share of train bars with a valid close), ``n_history`` (valid closes in the
  train slice);
- a non-finite value (``inf``) of any feature becomes NaN, i.e. missing (``n_non_finite`` in the
  event; the view already turns infinite scanner fields into NaN for every engine);
- scanner fields (point-in-time): ``liquidity`` = log10(Value.Traded) (NaN when missing or <= 0);
  ``Recommend.All``, ``Recommend.MA``, ``ROC`` multiplied by d; ``Volatility.D``, ``ADX`` as given;
  ``ROC_raw`` (the asset's own ROC, for the ROC veto).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from market.entropy import EntropyNullCache, permutation_entropy
from selection.pipeline import kernels as K
from selection.pipeline.context import SelectionContext

PRICE_FEATURES = ("momentum", "stability", "volatility", "entropy", "entropy_raw", "efficiency",
                  "hurst", "hurst_clean", "skew", "kurtosis", "cvar", "tail_gain", "n_valid")


def price_features(x: np.ndarray, periods_per_year: int, null_cache: EntropyNullCache | None) -> dict:
    """Return-based features of each column of ``x`` (bars x candidates) as a dict of arrays.

    ``null_cache`` None skips the entropy features (the ridge challenger's sub-windows do not use
    them).
    """
    x = np.asarray(x, dtype=np.float64)
    mean, std = K.mean_std(x)
    vol = std * np.sqrt(periods_per_year)
    skew, kurt = K.moments(x)
    cvar, gain = K.tails(x)
    h = K.hurst(x)
    out = {
        "momentum": mean * periods_per_year,
        "stability": 1.0 / (vol + K.STABILITY_EPS),
        "volatility": vol,
        "efficiency": K.efficiency(x),
        "hurst": h,
        "hurst_clean": K.hurst_clean(h),
        "skew": skew,
        "kurtosis": kurt,
        "cvar": cvar,
        "tail_gain": gain,
        "n_valid": (~np.isnan(x)).sum(axis=0).astype(np.float64),
    }
    if null_cache is not None:
        raw, n_windows = permutation_entropy(x)
        out["entropy"] = null_cache.percentile(raw, n_windows)
        out["entropy_raw"] = np.where(n_windows >= 10, raw, np.nan)
    return out


def build_feature_store(returns: pd.DataFrame, train_closes_valid: np.ndarray, pool: pd.DataFrame,
                        lookback: int, periods_per_year: int,
                        null_cache: EntropyNullCache) -> pd.DataFrame:
    """The feature store of a pool (rows = ``pool.index``, same order as ``returns`` columns).

    ``train_closes_valid`` is a (train bars x candidates) boolean matrix of valid closes.
    """
    m = min(lookback, len(returns))
    x = returns.to_numpy(dtype=np.float64)[-m:]
    f = price_features(x, periods_per_year, null_cache)
    f["antifragility"] = K.antifragility(f["skew"], f["tail_gain"], f["n_valid"], periods_per_year)
    f["fragility"] = K.fragility(f["antifragility"], f["cvar"])
    n_hist = train_closes_valid.sum(axis=0)
    f["n_history"] = n_hist.astype(np.float64)
    f["survival"] = n_hist / max(train_closes_valid.shape[0], 1)
    vt = pool["Value.Traded"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        f["liquidity"] = np.where(vt > 0, np.log10(np.where(vt > 0, vt, 1.0)), np.nan)
    d = pool["d"].to_numpy(dtype=np.float64)
    for col in ("Recommend.All", "Recommend.MA", "ROC"):
        f[col] = d * pool[col].to_numpy(dtype=np.float64)
    f["ROC_raw"] = pool["ROC"].to_numpy(dtype=np.float64)
    f["Volatility.D"] = pool["Volatility.D"].to_numpy(dtype=np.float64)
    f["ADX"] = pool["ADX"].to_numpy(dtype=np.float64)
    return pd.DataFrame(f, index=pool.index)


@dataclass(frozen=True)
class FeatureGenerator:
    """Feature Engineering: ``returns`` + ``raw_pool`` -> ``feature_store`` (once per window)."""

    lookback: int
    name: ClassVar[str] = "features"
    reads: ClassVar[tuple[str, ...]] = ("raw_pool", "returns")
    writes: ClassVar[tuple[str, ...]] = ("feature_store", "audit_trail")

    def __call__(self, ctx: SelectionContext) -> SelectionContext:
        view, pool = ctx.view, ctx.raw_pool
        train = view.train_closes
        syms = list(pd.unique(pool["symbol"]))
        valid = ~np.isnan(train[syms].to_numpy(dtype=np.float64))
        pos = {s: j for j, s in enumerate(syms)}
        cols = np.array([pos[s] for s in pool["symbol"].tolist()], dtype=np.int64)
        store = build_feature_store(ctx.returns, valid[:, cols], pool, self.lookback,
                                    view.calendar.periods_per_year, ctx.null_cache)
        inf = np.isinf(store.to_numpy(dtype=np.float64))
        if inf.any():  # a non-finite feature is missing (its veto fires missing:<feature>)
            store = store.mask(pd.DataFrame(inf, index=store.index, columns=store.columns))
        data = {"n_assets": int(store.shape[0]), "n_features": int(store.shape[1]),
                "lookback": int(min(self.lookback, len(ctx.returns))), "n_non_finite": int(inf.sum())}
        return ctx.model_copy(update={"feature_store": store,
                                      "audit_trail": ctx.event(self.name, "computed", data)})
