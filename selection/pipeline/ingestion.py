"""Stage 1, Ingestion (``DiscoveryProvider``): SELECTION_SPEC section 1.

Order of operations (each drop is recorded in ``params['dropped']`` with a named reason):

1. records whose ``logic`` is not one of rating/trend/mom/rev: ``invalid:logic``; a ``direction``
   other than LONG/SHORT is kept as missing (the policy's ``missing:direction`` hard veto);
2. records whose symbol has no price column or no close at all up to the cut-off (``no_prices``),
   or whose closes up to the cut-off fail ``market.panel.validate_panel``'s rules (an infinite or
   negative close, a missing close between the first and the last, a 0 followed by more prices):
   ``invalid_prices``. A symbol with closes only before the train slice stays in the pool (the
   policy's ``history``/``survival`` hard vetoes reject it), as SELECTION_SPEC section 1 drops only
   missing or invalid prices;
3. one record per (symbol, logic, direction): the highest ``Value.Traded`` (then exchange name)
   stays (``duplicate:record``);
4. one record per (identity, logic, direction): among the venues that pass their own liquidity floor
   the highest ``Value.Traded``, else the highest overall; ties by symbol (``duplicate:venue``);
5. at most ``depth_cap`` records per (logic, direction) by ``Value.Traded``, ties by id
   (``depth_cap``).

A missing ``Value.Traded`` sorts last everywhere. Candidate id = atom id
``{identity}_{logic}_{direction}`` (``NA`` for a missing direction). A missing direction is treated
as d = +1 for the direction-adjusted returns (the candidate is hard-vetoed anyway).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from contracts.candidate import CANDIDATE_COLUMNS
from contracts.enums import Direction, Logic
from contracts.errors import DataError
from market.identity import identity_of
from market.panel import simple_returns
from selection.config import SelectionConfig
from selection.pipeline.context import SelectionContext

_LOGICS = {x.value for x in Logic}
_DIRECTIONS = {x.value for x in Direction}


def liquidity_floor(asset_type: pd.Series, config: SelectionConfig) -> np.ndarray:
    """USD floor per record: perpetuals ``liquidity_floor_perp``, everything else the other one."""
    return np.where(asset_type.astype(object) == "perp", config.liquidity_floor_perp,
                    config.liquidity_floor_other)


def price_faults(px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of closes (bars x symbols): (no close at all, fails the panel rules).

    The rules are ``market.panel.validate_panel``'s, vectorised: no infinite or negative close, no
    missing close between the first and the last, a 0 only as the last close.
    """
    n = px.shape[0]
    valid = ~np.isnan(px)
    any_valid = valid.any(axis=0)
    first = np.argmax(valid, axis=0)
    last = n - 1 - np.argmax(valid[::-1], axis=0)
    with np.errstate(invalid="ignore"):
        bad = (np.isinf(px) | (px < 0)).any(axis=0)
        gap = valid.sum(axis=0) != (last - first + 1)
        rows = np.arange(n)[:, None]
        zero_early = ((px == 0) & (rows < last[None, :])).any(axis=0)
    return ~any_valid, any_valid & (bad | gap | zero_early)


def _vt_key(df: pd.DataFrame) -> pd.Series:
    """Sort key: -Value.Traded, missing last."""
    return (-pd.to_numeric(df["Value.Traded"], errors="coerce")).fillna(np.inf)


def normalise_pool(pool: pd.DataFrame) -> pd.DataFrame:
    """Pool with string symbols, missing-aware metadata, identity, sign ``d`` and candidate ``id``."""
    missing = [c for c in CANDIDATE_COLUMNS if c not in pool.columns and c != "snapshot_date"]
    if missing:
        raise DataError(f"candidate pool lacks columns {missing}")
    df = pool.reset_index(drop=True).copy()
    df["symbol"] = df["symbol"].astype(str)
    df["logic"] = df["logic"].astype(object).where(df["logic"].notna(), None)
    direction = df["direction"].astype(object)
    df["direction"] = direction.where(direction.isin(_DIRECTIONS), None)
    for col in ("Value.Traded", "Recommend.All", "Recommend.MA", "ROC", "Volatility.D", "ADX"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(np.float64)
    df["identity"] = [identity_of(s) for s in df["symbol"].tolist()]
    df["d"] = np.where(df["direction"] == "SHORT", -1.0, 1.0)
    df["id"] = [f"{i}_{lg}_{dr if dr is not None else 'NA'}"
                for i, lg, dr in zip(df["identity"].tolist(), df["logic"].tolist(), df["direction"].tolist())]
    return df


def _sorted(order: list[int], *keys: list) -> list[int]:
    """``order`` (row positions) stably sorted by the per-row ``keys`` (each indexed by position):
    the order ``DataFrame.sort_values(keys, kind="mergesort")`` gives (a stable lexicographic
    sort; strings compare by code point, as pandas' sorted categories do)."""
    rows = list(zip(*keys, strict=True))  # rows[i] == tuple(k[i] for k in keys)
    return sorted(order, key=rows.__getitem__)


def _first_of_groups(order: list[int], *keys: list) -> list[bool]:
    """Per position of ``order``: whether it is the first row of its ``keys`` group in that order
    (``~DataFrame.duplicated(keys, keep="first")``)."""
    seen: set = set()
    out = []
    rows = list(zip(*keys, strict=True))
    for i in order:
        k = rows[i]
        out.append(k not in seen)
        seen.add(k)
    return out


def deduplicate(df: pd.DataFrame, closes: pd.DataFrame, config: SelectionConfig,
                dropped: list[dict]) -> pd.DataFrame:
    """Steps 1-5 of the module docstring on a normalised pool.

    The steps run on row positions and plain lists (each sort, drop and rank as the pandas
    operations named in the comments would give it; tests/selection/test_v4_ingestion.py compares
    with the frame-by-frame implementation) and the pool is taken once at the end."""
    ids, syms = df["id"].tolist(), df["symbol"].tolist()
    logic = df["logic"].tolist()
    order = list(range(len(df)))

    def drop(keep: list[bool], reason: str) -> None:  # drop records, listed in the current order
        nonlocal order
        dropped.extend({"id": ids[i], "symbol": syms[i], "reason": reason}
                       for i, k in zip(order, keep) if not k)
        order = [i for i, k in zip(order, keep) if k]

    drop([logic[i] in _LOGICS for i in order], "invalid:logic")
    cols = set(closes.columns)
    drop([syms[i] in cols for i in order], "no_prices")
    uniq = list(dict.fromkeys(syms[i] for i in order))
    empty, bad = price_faults(closes[uniq].to_numpy(dtype=np.float64))
    empty_s, bad_s = dict(zip(uniq, empty.tolist())), dict(zip(uniq, bad.tolist()))
    drop([not empty_s[syms[i]] for i in order], "no_prices")
    drop([not bad_s[syms[i]] for i in order], "invalid_prices")

    direction = df["direction"].tolist()
    dir_key = ["NA" if d is None else d for d in direction]  # direction.fillna("NA")
    vt_key = _vt_key(df).tolist()
    ex = df["exchange"].astype(object).fillna("").astype(str).tolist()
    identity = df["identity"].tolist()
    # sort by symbol, logic, direction, -Value.Traded, exchange; first per (symbol, logic, direction)
    order = _sorted(order, syms, logic, dir_key, vt_key, ex)
    drop(_first_of_groups(order, syms, logic, dir_key), "duplicate:record")

    passes = pd.to_numeric(df["Value.Traded"], errors="coerce").to_numpy() >= liquidity_floor(
        df["asset_type"], config)
    fail = (~passes).astype(np.int8).tolist()
    order = _sorted(order, identity, logic, dir_key, fail, vt_key, syms)
    drop(_first_of_groups(order, identity, logic, dir_key), "duplicate:venue")

    order = _sorted(order, logic, dir_key, vt_key, ids)
    rank: dict[tuple, int] = {}  # groupby(["logic", "_dir"]).cumcount()
    keep = []
    for i in order:
        g = (logic[i], dir_key[i])
        keep.append(rank.get(g, 0) < config.depth_cap)
        rank[g] = rank.get(g, 0) + 1
    drop(keep, "depth_cap")
    order = _sorted(order, ids)
    return df.take(order).set_index("id", drop=False).rename_axis("candidate")


def direction_adjusted_returns(closes: pd.DataFrame, pool: pd.DataFrame, train_rows: int) -> pd.DataFrame:
    """Train-slice returns ``x = d * r`` (bars x candidate ids); the first train bar's return uses
    the close before the train slice when there is one. A return reads its bar and the one before
    (``simple_returns`` is elementwise), so only the last ``train_rows + 1`` closes are read: the
    same numbers as the returns of the whole history cut to the last ``train_rows`` rows."""
    syms = list(pd.unique(pool["symbol"]))
    r = simple_returns(closes.iloc[-(train_rows + 1):][syms]).to_numpy()[-train_rows:]
    pos = {s: j for j, s in enumerate(syms)}
    cols = np.array([pos[s] for s in pool["symbol"].tolist()], dtype=np.int64)
    x = r[:, cols] * pool["d"].to_numpy()[None, :]
    return pd.DataFrame(x, index=closes.index[-train_rows:], columns=pool.index)


@dataclass(frozen=True)
class DiscoveryProvider:
    """Ingestion: pool as of the cut-off -> deduplicated ``raw_pool`` and train ``returns``."""

    config: SelectionConfig
    name: ClassVar[str] = "ingestion"
    reads: ClassVar[tuple[str, ...]] = ("view",)
    writes: ClassVar[tuple[str, ...]] = ("raw_pool", "returns", "params", "audit_trail")

    def __call__(self, ctx: SelectionContext) -> SelectionContext:
        view = ctx.view
        train_rows = len(view.train_closes)
        if train_rows < 2:
            raise DataError(f"window {view.window.index}: train slice has {train_rows} bar(s)")
        dropped: list[dict] = []
        pool = normalise_pool(view.pool)
        raw = deduplicate(pool, view.closes, self.config, dropped)
        returns = direction_adjusted_returns(view.closes, raw, train_rows)
        by_reason: dict[str, int] = {}
        for d in dropped:
            by_reason[d["reason"]] = by_reason.get(d["reason"], 0) + 1
        data = {"n_snapshot": int(len(view.pool)), "n_pool": int(len(raw)),
                "dropped": dict(sorted(by_reason.items())), "train_bars": train_rows,
                "non_finite_fields": list(view.non_finite)}
        params = {**ctx.params, "dropped": tuple(dropped), "n_snapshot": int(len(view.pool))}
        return ctx.model_copy(update={"raw_pool": raw, "returns": returns, "params": params,
                                      "audit_trail": ctx.event(self.name, "ingested", data)})
