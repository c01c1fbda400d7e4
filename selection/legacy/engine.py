"""The v3.4 selection engine: FROZEN (spec_version "3.4", engine "v3.4").

This is the previous production engine, kept unchanged as the tournament's benchmark: v4
(``selection/pipeline/``) must beat it on simulated out-of-sample results, and the parity tests prove
that the two differ only by five named policy settings (SELECTION_SPEC section 8). Do not refactor it
into stage objects, do not share code with ``selection.pipeline`` (import-linter forbids it either
way) and do not change its behaviour: a change here moves the benchmark. It imports only
``contracts`` and ``market``.

Written the way the old system was: per-column features (``selection.legacy.features``), its own
Log-MPS (section 3) and Ward partitioning (section 4), and Hierarchical Threshold Relaxation by
recursion (``_htr`` calls itself with the next stage's thresholds until >= 15 winners or stage 4).
Its policy differs from v4's default only in: ``sector_cap`` None, ``tail_vetoes`` off, ``hardening``
off, ``top_n_floor`` 5 (``max(5, top_n)`` per cluster and direction), ``max_winners`` None. These
five are module constants, not ``LegacyConfig`` fields: the benchmark cannot be configured away from
v3.4's policy (they are recorded in the first ``pipeline_audit`` event).

Choices where the spec is silent: the final winner list is ordered by alpha (descending, ties by
candidate id); clusters are scipy's labels over the candidates without a hard veto sorted by id,
renumbered by first appearance in that order (cluster 0 holds the smallest id); a winner's
``htr_stage`` is the first stage whose pass recruited it; stages 3 and 4 keep stage 2's thresholds.
The engine is deterministic: ``seed`` is accepted for the common engine signature and recorded.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from scipy.special import ndtr

from contracts.atom import StrategyAtom
from contracts.enums import Direction, Logic, SpecVersion
from contracts.selection import Funnel, RejectedCandidate, SelectionResult
from market.entropy import EntropyNullCache
from market.view import PastView
from selection.legacy.features import ingest, legacy_features, liquidity_floor, train_returns
from selection.ranks import average_ranks

ENGINE = "v3.4"
SCORER = "log_mps"
# The five policy settings in which v3.4 differs from v4's default (SELECTION_SPEC section 8).
SECTOR_CAP = None
TAIL_VETOES = False
HARDENING = False
TOP_N_FLOOR = 5
MAX_WINNERS = None

#: Log-MPS components (feature, mapping, default weight), in the order the log-terms are summed.
LOG_MPS: tuple[tuple[str, str, float], ...] = (
    ("momentum", "rank", 1.7469), ("stability", "rank", 0.0458), ("liquidity", "cdf", 0.2946),
    ("antifragility", "rank", 0.6263), ("survival", "cdf", 1.4000), ("efficiency", "cdf", 1.5348),
    ("entropy", "rank_desc", 0.0322), ("cvar", "cdf", 1.0), ("hurst_clean", "rank", 0.3485),
    ("ADX", "cdf", 1.0), ("Recommend.All", "rank", 1.0), ("Recommend.MA", "rank", 1.0),
    ("ROC", "rank", 0.5), ("Volatility.D", "rank_desc", 0.5), ("skew", "rank", 0.5),
    ("kurtosis", "rank_desc", 0.5),
)


class LegacyConfig(BaseModel):
    """Settings of the frozen engine (defaults = SELECTION_SPEC's); unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feature_lookback: int = Field(120, ge=2, description="L, bars of the train slice read by features")
    top_n: int = Field(3, ge=1, description="recruits per cluster and direction (floored at 5)")
    min_winners: int = Field(15, ge=1, description="HTR stops at the first stage with this many")
    entropy_max: float = Field(0.90, description="entropy percentile ceiling at stage 1")
    efficiency_min: float = Field(0.05, description="Kaufman efficiency floor at stage 1")
    adx_min: float = Field(10.0, description="ADX floor (points) at stage 1")
    entropy_relax: float = Field(1.2, description="stage >= 2: entropy_max x this, at most 1.0")
    floor_relax: float = Field(0.8, description="stage >= 2: efficiency_min x this (and adx_min "
                                                "when adx_relax is None)")
    adx_relax: float | None = Field(None, description="stage >= 2: adx_min x this; None = floor_relax")
    sentiment_min: float = Field(0.1, description="d * Recommend.All must exceed this")
    min_history_bars: int = Field(60, ge=1, description="valid train bars, capped at train length")
    min_survival: float = Field(0.1, description="hard veto below this survival share")
    shrinkage_intensity: float = Field(0.01, ge=0, le=1, description="ridge s of C <- (1-s)C + sI")
    corr_lookbacks: tuple[int, ...] = (60, 120, 200)
    min_common_obs: int = Field(20, ge=2, description="pairs with fewer common returns get C = 0")
    cut_distance: float = 0.7
    max_clusters: int = 25
    weights: dict[str, float] | None = Field(None, description="Log-MPS weights; None = LOG_MPS")


def _probability(v: np.ndarray, mapping: str) -> np.ndarray:
    """One column mapped to probabilities (SELECTION_SPEC section 3); NaN -> 0.01."""
    ok = ~np.isnan(v)
    n = int(ok.sum())
    p = np.full(v.shape, 0.01)
    if n == 0:
        return p
    vals = v[ok]
    if mapping in ("rank", "rank_desc"):
        q = average_ranks(vals if mapping == "rank" else -vals)
        p[ok] = 1.0 if n == 1 else 0.01 + 0.99 * (q - 1.0) / (n - 1.0)
        return p
    if mapping != "cdf":
        raise ValueError(f"unknown mapping {mapping!r}")
    if vals.min() >= 0.0 and vals.max() <= 1.0:
        p[ok] = np.clip(vals, 0.001, 1.0)
    else:
        sd = float(vals.std(ddof=1)) if n > 1 else 0.0  # one value: std counts as 0, so p = 0.5
        z = (vals - vals.mean()) / (sd + 1e-9)
        p[ok] = np.clip(ndtr(z), 0.001, 1.0)
    p[np.isnan(p)] = 0.01
    return p


def legacy_log_mps(features: pd.DataFrame, weights: dict[str, float] | None = None) -> pd.Series:
    """Log-MPS conviction ``alpha_i = exp(sum_f w_f ln p_f(i))`` per candidate; NaN alpha -> 0."""
    w = {f: wt for f, _, wt in LOG_MPS} if weights is None else weights
    unknown = set(w) - {f for f, _, _ in LOG_MPS}
    if unknown:
        raise ValueError(f"unknown Log-MPS components {sorted(unknown)}")
    total = np.zeros(len(features))
    for feat, mapping, _ in LOG_MPS:
        if w.get(feat, 0.0) != 0.0:  # a zero weight contributes nothing (and is not computed)
            p = _probability(features[feat].to_numpy(dtype=np.float64), mapping)
            total = total + w[feat] * np.log(p)
    alpha = np.exp(total)
    alpha[np.isnan(alpha)] = 0.0
    return pd.Series(alpha, index=features.index, name=SCORER)


def _corr_row(sub: np.ndarray, i: int, min_obs: int) -> np.ndarray:
    """Correlations of column ``i`` with every column, each pair over its own common rows.

    The old engine's pairwise loop, one row of the matrix at a time: for pair (i, j) the common
    rows are those where both are valid; fewer than ``min_obs`` of them, or a constant side, give 0.
    """
    valid = ~np.isnan(sub)
    both = valid[:, [i]] & valid
    n = both.sum(axis=0)
    a = np.where(both, sub[:, [i]], 0.0)
    b = np.where(both, sub, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        da = np.where(both, a - a.sum(axis=0) / n, 0.0)
        db = np.where(both, b - b.sum(axis=0) / n, 0.0)
        den = np.sqrt((da * da).sum(axis=0) * (db * db).sum(axis=0))
        c = (da * db).sum(axis=0) / den
    return np.where((n >= min_obs) & (den > 0) & np.isfinite(c), np.clip(c, -1.0, 1.0), 0.0)


#: rows of the pairwise block products taken at once in ``_corr_matrix`` (memory: T x 16 x k floats)
_CORR_BLOCK = 16


def _corr_matrix(sub: np.ndarray, min_obs: int) -> np.ndarray:
    """The symmetric matrix of ``_corr_row``'s numbers for every pair (i < j), unit diagonal.

    Columns without a NaN in ``sub`` ("full"; nearly all of them) pair over every row, so each
    one's mean, centred values and sum of squares are its own, and a pair's cross sum is
    ``sum_t d_i[t] d_j[t]``: here the products of a block of pairs summed over t in one numpy
    reduction. ``_corr_row``'s sums over t are numpy reductions whose order depends on the memory
    layout of ``sub`` (its temporaries follow it): rows adjacent in memory (a column-major frame's
    ``to_numpy()``) are summed pairwise, columns adjacent (row-major) one row after another. The
    block reductions are laid out the same way (t adjacent, or t outermost over >= 2 elements), so
    from the same elementwise values they give the same bits
    (``tests/selection/test_legacy_speed.py``, both layouts). Pairs with a column holding a NaN are
    computed by ``_corr_row`` over their own common rows, on a copy in the layout of ``sub``.
    """
    T, k = sub.shape
    c = np.eye(k)
    t_adjacent = T > 1 and abs(sub.strides[0]) <= abs(sub.strides[1])
    full = np.flatnonzero(~np.isnan(sub).any(axis=0))
    done = np.zeros((k, k), dtype=bool)
    nf = len(full)
    if nf >= 2:
        n = np.full(nf, T)
        with np.errstate(invalid="ignore", divide="ignore"):
            if t_adjacent:  # (columns, T): each sum runs over adjacent t
                x = np.ascontiguousarray(sub.T[full])
                d = x - (x.sum(axis=1) / n)[:, None]
                ss = (d * d).sum(axis=1)
            else:  # (T, columns): t is the outer axis
                x = np.ascontiguousarray(sub[:, full])
                d = x - x.sum(axis=0) / n
                ss = (d * d).sum(axis=0)
            for i0 in range(0, nf - 1, _CORR_BLOCK):
                i1 = min(i0 + _CORR_BLOCK, nf - 1)
                if t_adjacent:
                    num = (d[i0:i1, None, :] * d[None, i0:, :]).sum(axis=2)
                else:
                    num = (d[:, i0:i1, None] * d[:, None, i0:]).sum(axis=0)
                den = np.sqrt(ss[i0:i1, None] * ss[None, i0:])
                r = num / den
                vals = np.where((T >= min_obs) & (den > 0) & np.isfinite(r), np.clip(r, -1.0, 1.0), 0.0)
                for a in range(i1 - i0):
                    i, js = full[i0 + a], full[i0 + a + 1:]
                    c[i, js] = c[js, i] = vals[a, a + 1:]
        done[np.ix_(full, full)] = True
    layout = np.asfortranarray if t_adjacent else np.ascontiguousarray
    for i in range(k - 1):
        rest = i + 1 + np.flatnonzero(~done[i, i + 1:])
        if len(rest):
            # each pair's sums run over its own column: a subset of the columns gives the same numbers
            row = _corr_row(layout(sub[:, np.r_[i, rest]]), 0, min_obs)
            c[i, rest] = c[rest, i] = row[1:]
    return c


def legacy_partition(x: pd.DataFrame, shrinkage: float = 0.01, config: LegacyConfig | None = None
                     ) -> tuple[dict[str, int], np.ndarray | None, np.ndarray]:
    """Ward clusters of the columns of ``x`` (direction-adjusted train returns, one pair at a time).

    Returns ``(clusters id -> label, linkage or None, mean unshrunk correlation)``. Pairs with
    fewer than ``min_common_obs`` common returns, or a constant side, get correlation 0.
    """
    cfg = config or LegacyConfig()
    ids = list(x.columns)
    k = len(ids)
    if k < 2:
        return {c: 0 for c in ids}, None, np.eye(k)
    arr = x.to_numpy(dtype=np.float64)
    lbs = [min(lb, arr.shape[0]) for lb in cfg.corr_lookbacks]
    dist = np.zeros((k, k))
    corr = np.zeros((k, k))
    for lb in lbs:
        c = _corr_matrix(arr[-lb:], cfg.min_common_obs)
        corr += c
        c = (1.0 - shrinkage) * c + shrinkage * np.eye(k)
        dist += np.sqrt(np.clip(0.5 * (1.0 - c), 0.0, None))
    dist /= len(lbs)
    np.fill_diagonal(dist, 0.0)
    z = linkage(squareform(dist, checks=False), method="ward")
    labels = fcluster(z, t=cfg.cut_distance, criterion="distance")
    if labels.max() > cfg.max_clusters:
        labels = fcluster(z, t=cfg.max_clusters, criterion="maxclust")
    renum: dict[int, int] = {}
    for lab in labels:
        renum.setdefault(int(lab), len(renum))
    return {c: renum[int(lab)] for c, lab in zip(ids, labels)}, z, corr / len(lbs)


def _meta_missing(v: object) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) or str(v).strip() == ""


def hard_vetoes(features: pd.DataFrame, pool: pd.DataFrame, train_length: int,
                config: LegacyConfig | None = None) -> dict[str, list[str]]:
    """Hard veto reasons per candidate: ``missing:<sector|asset_type|direction|Value.Traded>``
    (metadata), ``liquidity``, ``history`` (valid train closes < min(60, train length)),
    ``survival`` (< 0.1; ``missing:survival`` when NaN). Tail vetoes are off in v3.4."""
    cfg = config or LegacyConfig()
    min_bars = min(cfg.min_history_bars, train_length)
    out: dict[str, list[str]] = {}
    # the same values as reading ``features.loc[cid]`` / ``pool.loc[cid]`` row by row, looked up once
    meta = {col: dict(zip(pool.index.tolist(), pool[col].tolist()))
            for col in ("sector", "asset_type", "direction", "Value.Traded")}
    n_history = features["n_history"].to_numpy(dtype=np.float64)
    survival = features["survival"].to_numpy(dtype=np.float64)
    for k, cid in enumerate(features.index):
        why = []
        for col in ("sector", "asset_type", "direction"):
            if _meta_missing(meta[col][cid]):
                why.append(f"missing:{col}")
        vt = float(meta["Value.Traded"][cid])
        if math.isnan(vt):
            why.append("missing:Value.Traded")
        elif vt < liquidity_floor(meta["asset_type"][cid]):
            why.append("liquidity")
        if n_history[k] < min_bars:
            why.append("history")
        if math.isnan(survival[k]):
            why.append("missing:survival")
        elif survival[k] < cfg.min_survival:
            why.append("survival")
        out[cid] = why
    return out


def _thresholds(stage: int, cfg: LegacyConfig) -> dict[str, float]:
    if stage == 1:
        return {"entropy_max": cfg.entropy_max, "efficiency_min": cfg.efficiency_min, "adx_min": cfg.adx_min}
    return {"entropy_max": min(1.0, cfg.entropy_max * cfg.entropy_relax),
            "efficiency_min": cfg.efficiency_min * cfg.floor_relax,
            "adx_min": cfg.adx_min * (cfg.floor_relax if cfg.adx_relax is None else cfg.adx_relax)}


def soft_vetoes(features: pd.DataFrame, th: dict[str, float], cfg: LegacyConfig) -> dict[str, list[str]]:
    """Soft veto reasons per candidate at thresholds ``th``; a NaN feature fires ``missing:<feature>``.

    Entropy is missing when its raw value could not be computed (``entropy_raw`` NaN: fewer than 10
    ordinal windows); the entropy rule is off once ``entropy_max >= 1`` (stage >= 2 at defaults).
    """
    out: dict[str, list[str]] = {}
    # the feature columns read once (the values ``features.loc[cid]`` gives row by row)
    col = {f: features[f].to_numpy(dtype=np.float64)
           for f in ("Recommend.All", "entropy", "entropy_raw", "efficiency", "ADX")}
    for k, cid in enumerate(features.index):
        why = []
        checks = [("Recommend.All", "sentiment", lambda v: v <= cfg.sentiment_min)]
        if th["entropy_max"] < 1.0:
            checks.append(("entropy", "entropy", lambda v: v > th["entropy_max"]))
        checks += [("efficiency", "efficiency", lambda v: v < th["efficiency_min"]),
                   ("ADX", "adx", lambda v: v < th["adx_min"])]
        for feat, name, fires in checks:
            v = float(col[feat][k])
            if feat == "entropy" and math.isnan(float(col["entropy_raw"][k])):
                v = math.nan
            if math.isnan(v):
                why.append(f"missing:{feat}")
            elif fires(v):
                why.append(name)
        out[cid] = why
    return out


def _ranked(ids, scores: pd.Series) -> list[str]:
    return sorted(ids, key=lambda c: (-float(scores[c]), c))


def _policy_pass(stage, features, scores, clusters, pool, hard, cfg):
    """One policy pass at stage ``stage`` (SELECTION_SPEC 5 with v3.4's settings: no sector cap, no
    final cap, ``max(5, top_n)`` per cluster and direction). Returns (winners in recruitment order,
    {id: recruiting step 1/3/4}, soft vetoes at this stage, identity twins left out by step 1)."""
    soft = soft_vetoes(features, _thresholds(stage, cfg), cfg)
    n_take = max(TOP_N_FLOOR, cfg.top_n)
    identity = dict(zip(pool.index, pool["identity"]))  # pool.loc[c, "identity"], looked up once
    sign_of = dict(zip(pool.index, pool["sign"]))
    winners: list[str] = []
    origin: dict[str, int] = {}
    twins: set[str] = set()  # clean members behind a better one of the same identity in the cluster
    for cl in sorted(set(clusters.values())):
        members = [c for c in clusters if clusters[c] == cl]
        seen, clean = set(), []
        for c in _ranked([c for c in members if not hard[c] and not soft[c]], scores):
            if identity[c] not in seen:
                seen.add(identity[c])
                clean.append(c)
            else:
                twins.add(c)
        for sign in (1.0, -1.0):
            for c in [c for c in clean if float(sign_of[c]) == sign][:n_take]:
                winners.append(c)
                origin[c] = 1
    if stage >= 3:
        for cl in sorted(set(clusters.values())):
            members = [c for c in clusters if clusters[c] == cl and not hard[c]]
            if members and not any(clusters[w] == cl for w in winners):
                best = _ranked(members, scores)[0]
                winners.append(best)
                origin[best] = 3
    if stage >= 4:
        for c in _ranked([c for c in clusters if not hard[c] and c not in origin], scores):
            if len(winners) >= cfg.min_winners:
                break
            winners.append(c)
            origin[c] = 4
    return winners, origin, soft, twins


def _htr(stage, features, scores, clusters, pool, hard, cfg, events, first=None):
    """Hierarchical Threshold Relaxation by recursion: stop at >= min_winners or at stage 4.

    Returns (winners by alpha desc then id, {winner: first stage whose pass recruited it},
    (soft vetoes, identity twins) of the last pass, last stage).
    """
    first = dict(first or {})
    if isinstance(scores, pd.Series):  # ``float(scores[c])`` from a dict: the same values, no index look-ups
        scores = dict(zip(scores.index, scores.to_numpy(dtype=np.float64)))
    winners, _, soft, twins = _policy_pass(stage, features, scores, clusters, pool, hard, cfg)
    for w in winners:
        first.setdefault(w, stage)
    vetoed: dict[str, int] = {}
    for c in clusters:
        for reason in soft[c]:
            vetoed[reason] = vetoed.get(reason, 0) + 1
    events.append({"stage": "policy", "event": "htr_pass",
                   "data": {"stage": stage, **_thresholds(stage, cfg), "n_winners": len(winners),
                            "n_vetoed": vetoed,
                            "n_shorts": sum(1 for w in winners if float(pool.at[w, "sign"]) < 0),
                            "winners": _ranked(winners, scores)}})
    if len(winners) >= cfg.min_winners or stage == 4:
        return _ranked(winners, scores), {w: first[w] for w in winners}, (soft, twins), stage
    return _htr(stage + 1, features, scores, clusters, pool, hard, cfg, events, first)


def legacy_select(features: pd.DataFrame, scores: pd.Series, clusters: dict[str, int],
                  pool: pd.DataFrame, train_length: int, config: LegacyConfig | None = None
                  ) -> tuple[list[str], int]:
    """The v3.4 policy on given features, scores and clusters: (winner ids in order, final stage)."""
    cfg = config or LegacyConfig()
    hard = hard_vetoes(features, pool, train_length, cfg)
    winners, _, _, stage = _htr(1, features, scores, clusters, pool, hard, cfg, [])
    return winners, stage


def run_v34(view: PastView, config: LegacyConfig | None = None,
            null_cache: EntropyNullCache | None = None, seed: int = 0) -> SelectionResult:
    """Run the frozen v3.4 engine on one window's past-only view.

    ``null_cache`` holds the entropy null tables (shared with v4 so both read the same percentiles);
    a fresh one is built when None. Returns a ``SelectionResult`` with spec_version "3.4".
    """
    cfg = config or LegacyConfig()
    cache = null_cache if null_cache is not None else EntropyNullCache()
    events: list[dict] = [{"stage": "params", "event": "settings", "data": {
        "sector_cap": SECTOR_CAP, "tail_vetoes": TAIL_VETOES, "hardening": HARDENING,
        "top_n_floor": TOP_N_FLOOR, "max_winners": MAX_WINNERS, "seed": seed, **cfg.model_dump()}}]
    faults: dict[str, str] = {}
    pool, dropped = ingest(view, faults)
    events.append({"stage": "ingestion", "event": "pool",
                   "data": {"n_snapshot": len(view.pool), "n_pool": len(pool), "n_dropped": len(dropped),
                            "price_faults": faults}})
    x_all = train_returns(view, pool)  # read by the features and the partition (computed once)
    feats = legacy_features(view, cfg.feature_lookback, cache, pool, x_all)
    events.append({"stage": "features", "event": "computed",
                   "data": {"n_assets": len(feats), "n_features": len(feats.columns) - 2}})
    scores = legacy_log_mps(feats, cfg.weights)
    events.append({"stage": "scoring", "event": "scored",
                   "data": {SCORER: {"mean_alpha": float(scores.mean()) if len(scores) else 0.0,
                                     "max_alpha": float(scores.max()) if len(scores) else 0.0}}})
    t_len = view.window.train_length
    hard = hard_vetoes(feats, pool, t_len, cfg)
    kept = [c for c in feats.index if not hard[c]]
    x = x_all[kept]
    clusters, z, corr = legacy_partition(x, cfg.shrinkage_intensity, cfg)
    sizes = pd.Series(clusters, dtype="int64").value_counts().sort_index()
    events.append({"stage": "partitioning", "event": "clusters",
                   "data": {"n_clusters": int(sizes.size), "sizes": {int(k): int(v) for k, v in sizes.items()},
                            "shrinkage_intensity": cfg.shrinkage_intensity}})
    winners, origin, (soft, twins), stage = _htr(1, feats, scores, clusters, pool, hard, cfg, events)
    atoms = []
    # each winner's pool fields, read by position column by column: the scalars ``pool.loc[w]``'s
    # row holds (the same element of each column), without building a row per winner
    at = pool.index.get_indexer(winners) if winners else np.zeros(0, int)
    if (at < 0).any():
        raise KeyError(f"winners {[w for w, i in zip(winners, at) if i < 0][:5]} not in the pool")
    meta = {c: pool[c].array for c in ("symbol", "identity", "sign", "logic", "sector")}
    for w, i in zip(winners, at.tolist()):
        lg = meta["logic"][i]
        atoms.append(StrategyAtom(
            id=w, symbol=str(meta["symbol"][i]), identity=str(meta["identity"][i]),
            direction=Direction("LONG" if float(meta["sign"][i]) > 0 else "SHORT"),
            logic=Logic(str(getattr(lg, "value", lg))), cluster=clusters[w],
            sector=str(meta["sector"][i]), conviction={SCORER: float(scores[w])}, htr_stage=origin[w]))
    events.append({"stage": "synthesis", "event": "atoms", "data": {"n_atoms": len(atoms)}})
    soft1 = soft_vetoes(feats, _thresholds(1, cfg), cfg)
    rejected = [RejectedCandidate(id=cid, symbol=sym, reasons=[reason], last_stage=None)
                for cid, sym, reason in dropped]
    symbol_of = dict(zip(pool.index, pool["symbol"]))
    for c in feats.index:
        if c in origin:
            continue
        # every veto reason (hard, then soft at the last stage); a candidate without a veto gets the
        # policy reason: "identity" (a better member of its identity in its cluster) or "rank"
        reasons = hard[c] + soft[c] or ["identity" if c in twins else "rank"]
        rejected.append(RejectedCandidate(id=c, symbol=str(symbol_of[c]), reasons=reasons,
                                          last_stage=stage))
    by_stage: dict[int, int] = {}
    for a in atoms:
        by_stage[a.htr_stage] = by_stage.get(a.htr_stage, 0) + 1
    funnel = Funnel(snapshot=len(view.pool), deduplicated=len(pool), after_hard_vetoes=len(kept),
                    after_all_vetoes_stage1=sum(1 for c in kept if not soft1[c]),
                    winners_by_stage=by_stage, n_clusters=int(sizes.size))
    return SelectionResult(
        engine=ENGINE, spec_version=SpecVersion.V34, window=view.window.index,
        cutoff_date=view.cutoff_date.isoformat(), atoms=atoms, clusters=clusters, htr_stage=stage,
        manifest={"shrinkage_intensity": cfg.shrinkage_intensity, "hardened": False},
        funnel=funnel, rejected=rejected,
        linkage=z.tolist() if z is not None else None,
        linkage_labels=list(x.columns) if z is not None else None,
        pipeline_audit=events, metrics=_metrics(atoms, clusters, corr, list(x.columns), seed))


def _metrics(atoms, clusters, corr, ids, seed) -> dict:
    """Cluster density (pair-weighted mean intra-cluster correlation, unshrunk; None when no cluster
    has two members), average conviction of the winners, pool diversity ``1 / sum share^2``."""
    lab = np.array([clusters[c] for c in ids])
    same = lab[:, None] == lab[None, :] if len(ids) else np.zeros((0, 0), bool)
    np.fill_diagonal(same, False)
    shares = pd.Series([a.cluster for a in atoms], dtype="int64").value_counts(normalize=True)
    return {"cluster_density": float(corr[same].mean()) if same.any() else None,
            "average_conviction": float(np.mean([a.conviction[SCORER] for a in atoms])) if atoms else 0.0,
            "pool_diversity": float(1.0 / (shares ** 2).sum()) if len(shares) else 0.0,
            "seed": seed}
