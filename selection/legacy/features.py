"""v3.4 ingestion and per-column features (frozen; SELECTION_SPEC sections 1-2, spec_version 3.4).

Written the way the previous engine was: a loop over candidates, each feature computed column by
column with plain numpy/scipy. It imports nothing of ``selection.pipeline``; v4's vectorised feature
store is tested against it (tests/selection/test_parity*.py).

Conventions (where SELECTION_SPEC is silent, the choice is written here):
- returns: daily simple returns of the closes up to the cut-off (``market.panel.simple_returns``), the
  rows of the train slice (``train_start .. cutoff``); the train slice's first return reads the bar
  before it, which is past data. ``x = d * r`` (direction-adjusted).
- the features read the last ``min(L, train_length)`` rows of ``x``, NaN skipped;
- ``n_valid`` = number of non-NaN values of ``x`` in that window; ``n_history`` (history veto) =
  number of valid closes in the train slice; ``survival`` = that number / train length;
- hurst: the valid values (NaN dropped, order kept), blocks of ``lag`` consecutive values from the
  start, ``S`` = population std (ddof 0) of the block, blocks with ``S == 0`` skipped, lags whose
  mean R/S is not positive skipped; fewer than two usable lags gives 0.5;
- efficiency: 0 when ``sum |x| < 1e-12`` (no path); skew/kurtosis: 0 when the variance is 0;
- tail_gain: 0 when no value lies above the 95% quantile, and 0 with <= 20 values (as cvar's rule);
- minmax across the pool: ``(v - min) / (max - min)``; 0 for every value when ``max == min``;
  NaN stays NaN; fragility: each ratio is 0 when its denominator is 0 or NaN.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from contracts.errors import DataError
from market.entropy import EntropyNullCache, permutation_entropy
from market.identity import identity_of
from market.panel import simple_returns, validate_panel
from market.view import PastView

#: feature columns of the store, in order (names shared with v4's feature store)
FEATURES: tuple[str, ...] = (
    "momentum", "stability", "entropy", "efficiency", "hurst", "hurst_clean", "skew", "kurtosis",
    "cvar", "tail_gain", "antifragility", "fragility", "survival", "liquidity",
    "Recommend.All", "Recommend.MA", "ROC", "Volatility.D", "ADX",
)
PERP_FLOOR = 50e6   # USD 24h traded value, perpetuals
OTHER_FLOOR = 20e6  # USD 24h traded value, spot and other assets
#: bookkeeping columns of the store (names shared with v4): annualised volatility (fraction), raw
#: permutation entropy (NaN with < 10 windows), the asset's own ROC (percent), counts
EXTRA: tuple[str, ...] = ("volatility", "entropy_raw", "ROC_raw", "n_valid", "n_history")
SCANNER_DEPTH = 100
LOGICS = ("rating", "trend", "mom", "rev")


def liquidity_floor(asset_type: object) -> float:
    """Liquidity floor (USD 24h traded value): $50M for perpetuals, $20M for every other asset."""
    return PERP_FLOOR if str(asset_type) == "perp" else OTHER_FLOOR


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT


def _candidate_id(identity: str, logic: object, direction: object) -> str:
    lg = "NA" if _missing(logic) else str(getattr(logic, "value", logic))
    dr = "NA" if _missing(direction) else str(getattr(direction, "value", direction))
    return f"{identity}_{lg}_{dr}"


def ingest(view: PastView, price_faults: dict[str, str] | None = None
           ) -> tuple[pd.DataFrame, list[tuple[str, str, str]]]:
    """Deduplicated pool indexed by candidate id, plus the drops as ``(candidate id, symbol, reason)``.

    ``price_faults`` (optional, filled in place) receives ``symbol -> validate_panel's message`` for
    every ``invalid_prices`` drop (what failed and on which date).

    Order: (0) drop records whose logic is not rating/trend/mom/rev (``invalid:logic``; a direction
    other than LONG/SHORT is kept as missing, hard-vetoed later) and records whose symbol has no price column or fails ``validate_panel``
    (``no_prices`` when the symbol has no column or no close up to the cut-off, else
    ``invalid_prices``); a symbol with closes only before the train slice stays (history veto); (1) one record per (symbol, logic, direction), the
    highest ``Value.Traded`` (ties by exchange name); (2) per (identity, logic, direction) the highest-volume venue among those
    passing their own liquidity floor, else the highest-volume one; (3) at most 100 per
    (logic, direction) by ``Value.Traded``. Ties: by symbol, then by candidate id.
    """
    pool = view.pool.copy()
    price_faults = {} if price_faults is None else price_faults
    dropped: list[tuple[str, str, str]] = []
    vt = pd.to_numeric(pool["Value.Traded"], errors="coerce").astype(float)
    pool["Value.Traded"] = vt
    pool["symbol"] = pool["symbol"].astype(str)
    direction = pool["direction"].astype(object).map(lambda d: getattr(d, "value", d))
    pool["direction"] = direction.where(direction.isin(["LONG", "SHORT"]), None)
    pool["logic"] = pool["logic"].astype(object).map(lambda v: getattr(v, "value", v))
    pool["identity"] = [identity_of(s) for s in pool["symbol"]]
    pool["id"] = [_candidate_id(i, lg, d) for i, lg, d in
                  zip(pool["identity"], pool["logic"], pool["direction"])]
    bad_logic = ~pool["logic"].isin(list(LOGICS))
    for cid, sym in zip(pool.loc[bad_logic, "id"], pool.loc[bad_logic, "symbol"]):
        dropped.append((cid, sym, "invalid:logic"))
    pool = pool.loc[~bad_logic].copy()
    problems: dict[str, str] = {}
    present = [s for s in dict.fromkeys(pool["symbol"]) if s in view.closes.columns]
    try:  # one call for the common case; symbol by symbol only to name the bad ones
        if present:
            validate_panel(view.closes[present], source="v3.4 ingestion")
    except DataError:
        for sym in present:
            if view.closes[sym].isna().all():
                problems[sym] = "no_prices"
                continue
            try:
                validate_panel(view.closes[[sym]], source="v3.4 ingestion")
            except DataError as exc:
                problems[sym] = "invalid_prices"
                price_faults[sym] = str(exc)
    keep = []
    for cid, sym in zip(pool["id"], pool["symbol"]):
        reason = "no_prices" if sym not in view.closes.columns else problems.get(sym)
        if reason is not None:
            dropped.append((cid, sym, reason))
        keep.append(reason is None)
    pool = pool.loc[np.array(keep, dtype=bool)].copy()
    # steps (1)-(3) on row positions and plain lists; each sort is the stable sort that
    # ``sort_values(..., kind="mergesort")`` gives (descending keys negated), each "first" is
    # ``duplicated(keep="first")`` in that order (tests/selection/test_legacy_speed.py compares
    # with the frame-by-frame steps); the pool is taken once at the end
    vt_key = [-v for v in pool["Value.Traded"].fillna(-np.inf).tolist()]  # descending
    fail = [0 if ((not math.isnan(v)) and v >= liquidity_floor(a)) else 1
            for v, a in zip(pool["Value.Traded"], pool["asset_type"])]  # _pass, descending
    ex = pool["exchange"].astype(object).fillna("").astype(str).tolist()
    ids, syms = pool["id"].tolist(), pool["symbol"].tolist()
    order = list(range(len(pool)))

    def firsts(order: list[int], key) -> list[bool]:
        seen: set = set()
        out = []
        for i in order:
            out.append(key(i) not in seen)
            seen.add(key(i))
        return out

    def drop(order: list[int], keep: list[bool], reason: str) -> list[int]:
        dropped.extend((ids[i], syms[i], reason) for i, k in zip(order, keep) if not k)
        return [i for i, k in zip(order, keep) if k]

    # (1) one record per (symbol, logic, direction)
    order = sorted(order, key=lambda i: (vt_key[i], ex[i]))
    order = drop(order, firsts(order, lambda i: (syms[i], ids[i])), "duplicate:record")
    # (2) one venue per (identity, logic, direction)
    order = sorted(order, key=lambda i: (fail[i], vt_key[i], syms[i]))
    order = drop(order, firsts(order, lambda i: ids[i]), "duplicate:venue")
    # (3) scanner depth per (logic, direction)
    order = sorted(order, key=lambda i: (vt_key[i], ids[i]))
    # the rank is groupby([logic.astype(str), direction.astype(str)]).cumcount(): a missing key
    # (pandas keeps None as missing through astype(str)) has no group and no rank, and such a
    # record leaves the pool here without a drop record (the frozen behaviour, kept as it is)
    lg, dr = pool["logic"].astype(str), pool["direction"].astype(str)
    no_group = (lg.isna() | dr.isna()).tolist()
    group = list(zip(lg.tolist(), dr.tolist()))
    seen_n: dict[tuple, int] = {}
    keep, cut = [], []
    for i in order:
        if no_group[i]:
            keep.append(False)
            cut.append(False)
            continue
        rank = seen_n.get(group[i], 0)
        keep.append(rank < SCANNER_DEPTH)
        cut.append(rank >= SCANNER_DEPTH)
        seen_n[group[i]] = rank + 1
    dropped.extend((ids[i], syms[i], "depth_cap") for i, c in zip(order, cut) if c)
    pool = pool.take([i for i, k in zip(order, keep) if k])
    pool = pool.set_index("id").sort_index()
    # a missing direction reads as d = +1 (the candidate is hard-vetoed on its metadata anyway)
    pool["sign"] = [-1.0 if d == "SHORT" else 1.0 for d in pool["direction"]]
    return pool, dropped


def train_returns(view: PastView, pool: pd.DataFrame) -> pd.DataFrame:
    """Direction-adjusted train-slice returns ``x = d * r`` (rows = train bars, columns = candidate ids)."""
    # a return reads its bar and the one before: the closes from the bar before the train slice on
    # give the train rows' returns exactly (column by column, as indexed arrays)
    start = view.window.train_start
    closes = view.closes.iloc[max(start - 1, 0):]
    syms = list(dict.fromkeys(pool["symbol"]))
    r = simple_returns(closes[syms]).iloc[1 if start > 0 else 0:]
    arr = r.to_numpy(dtype=np.float64)
    pos = {s: j for j, s in enumerate(syms)}
    cols = np.array([pos[s] for s in pool["symbol"]], dtype=np.int64)
    x = arr[:, cols] * pool["sign"].to_numpy(dtype=np.float64)[None, :]
    return pd.DataFrame(x, index=r.index, columns=list(pool.index), dtype=np.float64)


def hurst_rs(v: np.ndarray) -> float:
    """Rescaled-range Hurst exponent of the valid values ``v`` (SELECTION_SPEC section 2), in [0, 1]."""
    n = v.size
    if n < 32:
        return 0.5
    logs_lag, logs_rs = [], []
    lag = 8
    while lag <= n // 2:
        # the n // lag blocks as the rows of one array: row reductions of a C-contiguous array run
        # numpy's same summation per row as a loop over the blocks would (the frozen numbers;
        # tests/selection/test_legacy_speed.py compares with that loop bit for bit)
        nb = n // lag
        blk = v[:nb * lag].reshape(nb, lag)
        dev = np.cumsum(blk - blk.mean(axis=1, keepdims=True), axis=1)
        s = blk.std(axis=1)
        ok = s > 0
        rs = (dev.max(axis=1)[ok] - dev.min(axis=1)[ok]) / s[ok]
        if rs.size and np.mean(rs) > 0:
            logs_lag.append(math.log(lag))
            logs_rs.append(math.log(float(np.mean(rs))))
        lag *= 2
    if len(logs_lag) < 2:
        return 0.5
    slope = np.polyfit(np.array(logs_lag), np.array(logs_rs), 1)[0]
    return float(min(1.0, max(0.0, slope)))


def hurst_many(vs: list[np.ndarray]) -> list[float]:
    """``[hurst_rs(v) for v in vs]``, the block statistics of every series of one length computed in
    one array (the blocks of all those series as rows: each row's reductions are the ones
    ``hurst_rs`` runs on that block; tests/selection/test_legacy_speed.py compares bit for bit)."""
    out = [0.5] * len(vs)
    by_n: dict[int, list[int]] = {}
    for k, v in enumerate(vs):
        if v.size >= 32:
            by_n.setdefault(int(v.size), []).append(k)
    for n, ks in by_n.items():
        g = len(ks)
        vals = np.stack([vs[k] for k in ks])  # (g, n)
        logs_lag: list[list[float]] = [[] for _ in ks]
        logs_rs: list[list[float]] = [[] for _ in ks]
        lag = 8
        while lag <= n // 2:
            nb = n // lag
            blk = np.ascontiguousarray(vals[:, :nb * lag]).reshape(g * nb, lag)
            dev = np.cumsum(blk - blk.mean(axis=1, keepdims=True), axis=1)
            sd = blk.std(axis=1).reshape(g, nb)
            rng = (dev.max(axis=1) - dev.min(axis=1)).reshape(g, nb)
            full = (sd > 0).all(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                mean_full = (rng / sd).mean(axis=1)  # rows with every block usable
            for c in range(g):
                if full[c]:
                    m = float(mean_full[c])
                    size = nb
                else:
                    ok = sd[c] > 0
                    rs = rng[c][ok] / sd[c][ok]
                    size = rs.size
                    m = float(np.mean(rs)) if size else 0.0
                if size and m > 0:
                    logs_lag[c].append(math.log(lag))
                    logs_rs[c].append(math.log(m))
            lag *= 2
        for c, k in enumerate(ks):
            if len(logs_lag[c]) < 2:
                continue
            slope = np.polyfit(np.array(logs_lag[c]), np.array(logs_rs[c]), 1)[0]
            out[k] = float(min(1.0, max(0.0, slope)))
    return out


def column_features(x: np.ndarray, periods: int, hurst: float | None = None) -> dict[str, float]:
    """Per-column features of one direction-adjusted return column ``x`` (NaN skipped)."""
    v = x[~np.isnan(x)]
    n = v.size
    out: dict[str, float] = {"n_valid": float(n)}
    out["momentum"] = float(v.mean() * periods) if n else math.nan
    out["volatility"] = float(v.std(ddof=1)) * math.sqrt(periods) if n >= 2 else math.nan
    out["stability"] = 1.0 / (out["volatility"] + 1e-9)
    if n >= 10:
        path = float(np.abs(v).sum())
        out["efficiency"] = abs(float(v.sum())) / path if path >= 1e-12 else 0.0
    else:
        out["efficiency"] = math.nan
    h = hurst_rs(v) if hurst is None else hurst  # hurst: hurst_rs(v), computed by the caller
    out["hurst"] = h
    out["hurst_clean"] = min(1.0, max(0.0, 1.0 - 2.0 * abs(h - 0.5)))
    if n > 2:
        # products, not ``dev ** 4``: numpy's power is not exactly even in its base, and the LONG and
        # SHORT candidates of one asset (x and -x) must keep exactly equal kurtosis and opposite
        # skew, or a rank mapping would split a true tie by an ulp
        dev = v - v.mean()
        d2 = dev * dev
        m2 = float(np.mean(d2))
        out["skew"] = float(np.mean(d2 * dev)) / m2 ** 1.5 if m2 > 0 else 0.0
        out["kurtosis"] = float(np.mean(d2 * d2)) / m2 ** 2 - 3.0 if m2 > 0 else 0.0
    else:
        out["skew"] = out["kurtosis"] = 0.0
    if n > 20:
        q05 = np.quantile(v, 0.05)
        out["cvar"] = float(v[v <= q05].mean())
    else:
        out["cvar"] = -0.1
    if n > 20:
        above = v[v > np.quantile(v, 0.95)]
        out["tail_gain"] = float(above.mean()) if above.size else 0.0
    else:
        out["tail_gain"] = 0.0
    return out


def column_features_rows(X: np.ndarray, periods: int, hursts: list[float]) -> list[dict[str, float]]:
    """``[column_features(X[r], periods, hursts[r]) for r]`` for rows without a NaN, all at once.

    Every reduction of ``column_features`` runs on a contiguous vector of the column's values; here
    on the contiguous rows of ``X`` along axis 1 (numpy sums each row pairwise, as it sums a vector,
    and partitions and interpolates each row's quantile as a vector's), from the same elementwise
    values, so every number is the same bits (``tests/selection/test_legacy_speed.py``). The
    scalar steps (Python-float powers and products, the tails' means over their own values) stay
    per row, written as in ``column_features``."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    rows, n = X.shape
    if rows == 0:
        return []
    if n == 0 or np.isnan(X).any():
        return [column_features(X[r][~np.isnan(X[r])], periods, hursts[r]) for r in range(rows)]
    mean = X.mean(axis=1)
    std = X.std(axis=1, ddof=1) if n >= 2 else None
    if n >= 10:
        path = np.abs(X).sum(axis=1).tolist()
        total = X.sum(axis=1).tolist()
    if n > 2:
        dev = X - mean[:, None]
        d2 = dev * dev
        m2 = np.mean(d2, axis=1).tolist()
        m3 = np.mean(d2 * dev, axis=1).tolist()
        m4 = np.mean(d2 * d2, axis=1).tolist()
    if n > 20:
        q05 = np.quantile(X, 0.05, axis=1)
        q95 = np.quantile(X, 0.95, axis=1)
    out = []
    for r in range(rows):
        v = X[r]
        f: dict[str, float] = {"n_valid": float(n)}
        f["momentum"] = float(mean[r] * periods)
        f["volatility"] = float(std[r]) * math.sqrt(periods) if n >= 2 else math.nan
        f["stability"] = 1.0 / (f["volatility"] + 1e-9)
        if n >= 10:
            f["efficiency"] = abs(total[r]) / path[r] if path[r] >= 1e-12 else 0.0
        else:
            f["efficiency"] = math.nan
        h = hursts[r]
        f["hurst"] = h
        f["hurst_clean"] = min(1.0, max(0.0, 1.0 - 2.0 * abs(h - 0.5)))
        if n > 2:
            f["skew"] = m3[r] / m2[r] ** 1.5 if m2[r] > 0 else 0.0
            f["kurtosis"] = m4[r] / m2[r] ** 2 - 3.0 if m2[r] > 0 else 0.0
        else:
            f["skew"] = f["kurtosis"] = 0.0
        if n > 20:
            f["cvar"] = float(v[v <= q05[r]].mean())
            above = v[v > q95[r]]
            f["tail_gain"] = float(above.mean()) if above.size else 0.0
        else:
            f["cvar"] = -0.1
            f["tail_gain"] = 0.0
        out.append(f)
    return out


def _minmax(s: pd.Series) -> pd.Series:
    lo, hi = s.min(), s.max()
    if not np.isfinite(hi - lo) or hi == lo:
        return s * 0.0
    return (s - lo) / (hi - lo)


def legacy_features(view: PastView, lookback: int, null_cache: EntropyNullCache,
                    pool: pd.DataFrame | None = None, returns: pd.DataFrame | None = None) -> pd.DataFrame:
    """The v3.4 feature store: index = candidate id, one column per feature (``FEATURES``).

    Also carries ``n_valid`` (valid returns in the feature window) and ``n_history`` (valid closes
    in the train slice) for the history veto. ``pool`` defaults to ``ingest(view)[0]``; ``returns``
    to ``train_returns(view, pool)`` (a caller that also needs them computes them once).
    Units: momentum annualised (fraction/yr), ``1/stability`` annualised volatility, entropy a
    percentile in [0, 1], survival a fraction, liquidity log10 USD, scanner fields as in the pool
    (``Recommend.*`` and ``ROC`` multiplied by ``d``).
    """
    if pool is None:
        pool = ingest(view)[0]
    periods = int(view.calendar.periods_per_year)
    x_all = train_returns(view, pool) if returns is None else returns
    t_len = view.window.train_length
    lb = min(int(lookback), t_len)
    x_arr = x_all.to_numpy(dtype=np.float64)[-lb:]
    tc = view.train_closes
    n_closes = dict(zip(tc.columns, (~np.isnan(tc.to_numpy(dtype=np.float64))).sum(axis=0)))
    rows = {}
    # candidates of one symbol and direction (its logics) have the same column x = d * r: its
    # features are computed once and copied (the same numbers as computing each column)
    first: dict[tuple[str, float], int] = {}
    for j, key in enumerate(zip(pool["symbol"], pool["sign"])):
        first.setdefault(key, j)
    # permutation entropy and its percentile of every distinct column in one call: each column's
    # value is computed by the same operations as a call on that column alone
    cols = list(first.values())
    raw_all, nw_all = permutation_entropy(x_arr[:, cols])
    pct_all = null_cache.percentile(raw_all, nw_all)
    at = {j: k for k, j in enumerate(cols)}
    # the Hurst exponent of every distinct column's valid values, in one batch (hurst_many)
    hs = hurst_many([x_arr[:, j][~np.isnan(x_arr[:, j])] for j in cols])
    # the distinct columns without a NaN in the window (nearly all), in one batch
    full = [j for j in cols if not np.isnan(x_arr[:, j]).any()]
    batch = dict(zip(full, column_features_rows(x_arr[:, full].T, periods, [hs[at[j]] for j in full])))
    done: dict[tuple[str, float], dict[str, float]] = {}
    for j, (cid, sym, sign) in enumerate(zip(pool.index, pool["symbol"], pool["sign"])):
        if (sym, sign) in done:
            rows[cid] = dict(done[(sym, sign)])
            continue
        x = np.ascontiguousarray(x_arr[:, j])
        k = at[j]
        f = batch[j] if j in batch else column_features(x, periods, hs[k])
        f["entropy"] = float(pct_all[k])
        f["entropy_raw"] = float(raw_all[k]) if nw_all[k] >= 10 else math.nan
        n_bars = int(n_closes[sym])
        f["n_history"] = float(n_bars)
        f["survival"] = n_bars / t_len
        rows[cid] = f
        done[(sym, sign)] = dict(f)
    per_col = ["n_valid", "momentum", "volatility", "stability", "efficiency", "hurst", "hurst_clean",
               "skew", "kurtosis", "cvar", "tail_gain", "entropy", "entropy_raw", "n_history", "survival"]
    feats = pd.DataFrame.from_dict(rows, orient="index", columns=per_col) if rows else \
        pd.DataFrame(columns=per_col, dtype=np.float64)
    feats = feats.reindex(pool.index)
    vt = pool["Value.Traded"].astype(float)
    feats["liquidity"] = np.log10(vt.where(vt > 0))
    sign = pool["sign"].astype(float)
    for col in ("Recommend.All", "Recommend.MA", "ROC"):
        feats[col] = pd.to_numeric(pool[col], errors="coerce").astype(float) * sign
    feats["ROC_raw"] = pd.to_numeric(pool["ROC"], errors="coerce").astype(float)
    for col in ("Volatility.D", "ADX"):
        feats[col] = pd.to_numeric(pool[col], errors="coerce").astype(float)
    cover = np.minimum(1.0, feats["n_valid"] / periods)
    af = (_minmax(feats["skew"]) + _minmax(feats["tail_gain"])) * cover
    feats["antifragility"] = af
    max_af = af.max()
    max_cvar = feats["cvar"].abs().max()
    t1 = 1.0 - af / max_af if np.isfinite(max_af) and max_af != 0 else af * 0.0 + 1.0
    t2 = feats["cvar"].abs() / max_cvar if np.isfinite(max_cvar) and max_cvar != 0 else feats["cvar"] * 0.0
    feats["fragility"] = t1 + t2
    return feats[list(FEATURES) + list(EXTRA)].astype(np.float64)
