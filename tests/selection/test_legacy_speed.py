"""Behaviour-preserving speed-ups of the frozen v3.4 engine give the loop's numbers bit for bit."""
import math

import numpy as np

from selection.legacy.features import hurst_rs


def _hurst_loop(v: np.ndarray) -> float:
    """hurst_rs as frozen in v3.4: one block at a time."""
    n = v.size
    if n < 32:
        return 0.5
    logs_lag, logs_rs = [], []
    lag = 8
    while lag <= n // 2:
        rs = []
        for b in range(n // lag):
            blk = v[b * lag:(b + 1) * lag]
            dev = np.cumsum(blk - blk.mean())
            s = blk.std()
            if s > 0:
                rs.append((dev.max() - dev.min()) / s)
        if rs and np.mean(rs) > 0:
            logs_lag.append(math.log(lag))
            logs_rs.append(math.log(float(np.mean(rs))))
        lag *= 2
    if len(logs_lag) < 2:
        return 0.5
    slope = np.polyfit(np.array(logs_lag), np.array(logs_rs), 1)[0]
    return float(min(1.0, max(0.0, slope)))


def test_hurst_blocks_as_rows_equal_the_block_loop_exactly():
    rng = np.random.default_rng(3)
    for t in range(3000):
        n = int(rng.integers(20, 520))
        v = rng.standard_t(3, size=n) * 10 ** rng.uniform(-4, 0)
        if t % 5 == 0:
            v[: int(rng.integers(0, n))] = 0.0  # zero-variance blocks are skipped
        if t % 7 == 0:
            v = np.round(v, 3)
        assert hurst_rs(v) == _hurst_loop(v), (t, n)
    assert hurst_rs(np.zeros(100)) == _hurst_loop(np.zeros(100)) == 0.5


def test_correlation_rows_from_column_i_on_equal_the_full_rows():
    from selection.legacy.engine import _corr_row

    rng = np.random.default_rng(5)
    for t in range(150):
        T, k = int(rng.integers(2, 300)), int(rng.integers(2, 40))
        sub = rng.normal(size=(T, k)) * 0.02
        sub[rng.random(sub.shape) < 0.1] = np.nan
        if t % 3 == 0:
            sub[: int(rng.integers(0, T)), int(rng.integers(0, k))] = np.nan  # late listing
        if t % 5 == 0:
            sub[:, 0] = 0.01  # constant column: correlation 0
        for i in range(k - 1):
            np.testing.assert_array_equal(_corr_row(sub[:, i:], 0, 20)[1:], _corr_row(sub, i, 20)[i + 1:])


def _corr_loop(sub: np.ndarray, min_obs: int) -> np.ndarray:
    """legacy_partition's correlation matrix as it was: one ``_corr_row`` per row, columns i on."""
    from selection.legacy.engine import _corr_row

    k = sub.shape[1]
    c = np.eye(k)
    for i in range(k - 1):
        row = _corr_row(sub[:, i:], 0, min_obs)
        c[i, i + 1:] = c[i + 1:, i] = row[1:]
    return c


def test_correlation_matrix_in_blocks_equals_the_row_loop_bit_for_bit():
    """Full columns' pairs as block products summed over rows, the others by ``_corr_row``: the
    same bits as the row loop (signed zeros included), on returns-like data with NaN patterns,
    constant and infinite columns, short windows and the block boundaries (k around 16, 32)."""
    from selection.legacy.engine import _CORR_BLOCK, _corr_matrix

    rng = np.random.default_rng(11)
    ks = [2, 3, _CORR_BLOCK, _CORR_BLOCK + 1, _CORR_BLOCK + 2, 2 * _CORR_BLOCK + 1, 80]
    for t in range(120):
        T = int(rng.choice([1, 2, 5, 19, 20, 21, 60, 120, 200, int(rng.integers(2, 260))]))
        k = ks[t % len(ks)] if t < 3 * len(ks) else int(rng.integers(2, 90))
        sub = rng.standard_t(4, size=(T, k)) * 10 ** rng.uniform(-3, -1, size=k)
        kind = t % 6
        if kind == 1:
            sub[rng.random(sub.shape) < 0.05] = np.nan  # scattered gaps
        elif kind == 2:
            for j in rng.choice(k, size=max(1, k // 8), replace=False):
                sub[: int(rng.integers(0, T + 1)), j] = np.nan  # late listings
        elif kind == 3:
            sub[:, rng.integers(0, k)] = 0.01  # constant: correlation 0
            sub[:, rng.integers(0, k)] = 0.0
        elif kind == 4:
            sub[rng.integers(0, T), rng.integers(0, k)] = np.inf
            sub[:, rng.integers(0, k)] = np.nan  # an empty column
        elif kind == 5:
            sub = np.round(sub, 4)  # ties and exact zeros
            sub[:, 1] = -sub[:, 0]
        # the layouts legacy_partition meets: a column-major frame's to_numpy() and its last rows
        # (rows adjacent in memory: numpy sums pairwise), a row-major array and its last rows
        tall = np.vstack([rng.normal(size=(7, k)), sub])
        layouts = {"C": sub, "F": np.asfortranarray(sub), "F rows": np.asfortranarray(tall)[-T:],
                   "C rows": tall[-T:]}
        for name, arr in layouts.items():
            for min_obs in (2, 20):
                got, ref = _corr_matrix(arr, min_obs), _corr_loop(arr, min_obs)
                assert got.tobytes() == ref.tobytes(), (t, name, T, k, min_obs, np.argwhere(got != ref)[:3])


def test_column_features_of_rows_at_once_equal_the_column_calls_bit_for_bit():
    """``column_features_rows`` (NaN-free columns as rows of one array) gives ``column_features``'s
    dict, value for value and bit for bit, at every length threshold (2, 10, 20) and with ties,
    constants and infinities; rows with a NaN take the column path."""
    from selection.legacy.features import column_features, column_features_rows

    rng = np.random.default_rng(29)
    for t in range(300):
        n = int(rng.choice([0, 1, 2, 3, 9, 10, 11, 20, 21, 22, 60, 120, 127, 128, 129, 252,
                            int(rng.integers(1, 400))]))
        rows = int(rng.integers(1, 25))
        X = rng.standard_t(3, size=(rows, n)) * 10 ** rng.uniform(-3, -1, size=(rows, 1))
        if t % 4 == 1:
            X = np.round(X, 3)  # ties at the quantiles
            X[0] = 0.002  # constant: m2 = 0
        if t % 5 == 2 and n:
            X[rng.integers(0, rows), rng.integers(0, n)] = np.inf
        if t % 7 == 3 and n:
            X[rng.integers(0, rows), rng.integers(0, n)] = np.nan  # the column path for all
        hs = rng.uniform(0, 1, size=rows).tolist()
        with np.errstate(all="ignore"):  # inf - inf, as in the column calls
            got = column_features_rows(X, 252, hs)
        for r in range(rows):
            x = np.ascontiguousarray(X[r])
            with np.errstate(all="ignore"):
                ref = column_features(x[~np.isnan(x)], 252, hs[r])
            assert list(got[r]) == list(ref), (t, r)
            assert np.array(list(got[r].values())).tobytes() == np.array(list(ref.values())).tobytes(), (t, n, r)


# --- v3.4 ingestion: the frame-by-frame reference -------------------------------------------------
import pandas as pd  # noqa: E402

from contracts.errors import DataError  # noqa: E402
from market.identity import identity_of  # noqa: E402
from market.panel import validate_panel  # noqa: E402
from selection.legacy.features import (LOGICS, SCANNER_DEPTH, _candidate_id,  # noqa: E402
                                       ingest, liquidity_floor)
from tests.selection.selection_pools import make_view, with_closes, with_pool  # noqa: E402


def _ingest_frames(view, price_faults: dict[str, str] | None = None
           ) -> tuple[pd.DataFrame, list[tuple[str, str, str]]]:
    """``ingest`` as it was before its steps (1)-(3) ran on row positions (e53a33c): the reference."""
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
    pool["_vt"] = pool["Value.Traded"].fillna(-np.inf)
    pool["_pass"] = [(not math.isnan(v)) and v >= liquidity_floor(a)
                     for v, a in zip(pool["Value.Traded"], pool["asset_type"])]
    # (1) one record per (symbol, logic, direction)
    pool["_ex"] = pool["exchange"].astype(object).fillna("").astype(str)
    pool = pool.sort_values(["_vt", "_ex"], ascending=[False, True], kind="mergesort")
    dup = pool.duplicated(subset=["symbol", "id"], keep="first")
    for cid, sym in zip(pool.loc[dup, "id"], pool.loc[dup, "symbol"]):
        dropped.append((cid, sym, "duplicate:record"))
    pool = pool.loc[~dup]
    # (2) one venue per (identity, logic, direction)
    pool = pool.sort_values(["_pass", "_vt", "symbol"], ascending=[False, False, True], kind="mergesort")
    dup = pool.duplicated(subset=["id"], keep="first")
    for cid, sym in zip(pool.loc[dup, "id"], pool.loc[dup, "symbol"]):
        dropped.append((cid, sym, "duplicate:venue"))
    pool = pool.loc[~dup]
    # (3) scanner depth per (logic, direction)
    pool = pool.sort_values(["_vt", "id"], ascending=[False, True], kind="mergesort")
    rank = pool.groupby([pool["logic"].astype(str), pool["direction"].astype(str)], sort=False).cumcount()
    cut = rank >= SCANNER_DEPTH
    for cid, sym in zip(pool.loc[cut, "id"], pool.loc[cut, "symbol"]):
        dropped.append((cid, sym, "depth_cap"))
    pool = pool.loc[rank < SCANNER_DEPTH].drop(columns=["_vt", "_pass", "_ex"])
    pool = pool.set_index("id").sort_index()
    # a missing direction reads as d = +1 (the candidate is hard-vetoed on its metadata anyway)
    pool["sign"] = [-1.0 if d == "SHORT" else 1.0 for d in pool["direction"]]
    return pool, dropped


def test_ingest_equals_the_frame_by_frame_steps():
    """Random pools with duplicate records, venues per identity, tied and missing Value.Traded,
    missing exchanges and directions, invalid logics, faulty prices and a small scanner depth:
    the same pool (values, dtypes, index, columns) and the same drops in the same order."""
    import selection.legacy.features as F

    rng = np.random.default_rng(5)
    reasons: set[str] = set()
    old_depth = F.SCANNER_DEPTH
    try:
        for seed in range(12):
            view = make_view(seed=seed, n_assets=12)
            closes = view.closes.copy()
            closes.iloc[5, 3] = np.nan
            closes.iloc[:, 4] = np.nan
            pool = view.pool.sample(n=3 * len(view.pool), replace=True, random_state=seed).reset_index(drop=True)
            k = len(pool)
            pool["Value.Traded"] = rng.choice([np.nan, 1e6, 22e6, 25e6, 40e6, 60e6, 60e6, 2e8], size=k)
            venues = [str(s).replace("USDT.P", "USDT") if rng.random() < 0.4 else str(s) for s in pool["symbol"]]
            pool["symbol"] = venues
            pool["asset_type"] = ["perp" if s.endswith(".P") else "spot" for s in venues]
            pool["exchange"] = rng.choice(["BINANCE", "BYBIT", "OKX"], size=k)
            pool.loc[rng.random(k) < 0.1, "exchange"] = None
            pool.loc[rng.random(k) < 0.05, "direction"] = None
            pool.loc[rng.random(k) < 0.05, "logic"] = "bogus"
            for sym in set(pool["symbol"]) - set(closes.columns):
                if rng.random() < 0.7:
                    closes[sym] = closes.iloc[:, 0]
            v = with_pool(with_closes(view, closes), pool)
            F.SCANNER_DEPTH = int(rng.integers(2, 6))
            new, d_new = ingest(v)
            globals()["SCANNER_DEPTH"] = F.SCANNER_DEPTH
            ref, d_ref = _ingest_frames(v)
            pd.testing.assert_frame_equal(new, ref, check_exact=True)
            assert d_new == d_ref
            reasons |= {r for _, _, r in d_ref}
    finally:
        F.SCANNER_DEPTH = old_depth
        globals()["SCANNER_DEPTH"] = old_depth
    assert reasons == {"duplicate:record", "duplicate:venue", "depth_cap", "no_prices",
                       "invalid_prices", "invalid:logic"}


def test_hurst_many_equals_hurst_rs_bit_for_bit():
    """The batched Hurst exponents (series of one length as one array of block rows) equal
    ``hurst_rs`` per series exactly: lengths below 32 and up to 400, many series per length,
    heavy tails, series with constant blocks (zero block deviation: the per-series path) and
    constant series."""
    from selection.legacy.features import hurst_many, hurst_rs

    rng = np.random.default_rng(3)
    vs = []
    for n in (10, 31, 32, 33, 59, 60, 64, 119, 120, 121, 250, 251, 400):
        for k in range(25):
            v = rng.standard_t(3, size=n) * 0.02 if k % 2 else rng.normal(0, 0.01, size=n)
            if k % 5 == 0:
                v[: min(n, 16)] = 0.0  # a constant block or two
            if k == 7:
                v[:] = 0.001  # constant series
            vs.append(v)
    got = hurst_many(vs)
    ref = [hurst_rs(v) for v in vs]
    assert len(got) == len(ref)
    for g, r, v in zip(got, ref, vs):
        assert g == r or (math.isnan(g) and math.isnan(r)), (v.size, g, r)
    assert len(set(ref)) > 100  # the series are not degenerate


def test_v34_atoms_read_by_position_equal_the_row_lookups():
    """run_v34 reads its winners' pool fields column by column (by position); each atom equals the
    one built from ``pool.loc[w]`` (the previous code), over several pools, in both string storages."""
    from contracts.atom import StrategyAtom
    from contracts.enums import Direction, Logic
    from market.entropy import EntropyNullCache
    from selection.legacy.engine import SCORER, run_v34

    n_atoms = 0
    for storage in ("python", "pyarrow"):
        with pd.option_context("mode.string_storage", storage):
            for seed in range(4):
                view = make_view(seed=seed, n_assets=40)
                res = run_v34(view, null_cache=EntropyNullCache(n_series=300))
                pool, _ = ingest(view)
                for a in res.atoms:
                    meta = pool.loc[a.id]
                    ref = StrategyAtom(
                        id=a.id, symbol=str(meta["symbol"]), identity=str(meta["identity"]),
                        direction=Direction("LONG" if float(meta["sign"]) > 0 else "SHORT"),
                        logic=Logic(str(getattr(meta["logic"], "value", meta["logic"]))), cluster=a.cluster,
                        sector=str(meta["sector"]), conviction={SCORER: a.conviction[SCORER]},
                        htr_stage=a.htr_stage)
                    assert ref == a and ref.model_dump() == a.model_dump()
                    n_atoms += 1
    assert n_atoms >= 20


def test_v34_train_returns_computed_once_give_the_same_features():
    """run_v34 computes the train returns once for the features and the partition: the features
    from the passed returns equal those computed from scratch, and the returns are left unchanged."""
    from market.entropy import EntropyNullCache
    from selection.legacy.features import legacy_features, train_returns

    for seed in range(3):
        view = make_view(seed=seed, n_assets=30)
        pool, _ = ingest(view)
        x = train_returns(view, pool)
        before = x.copy()
        cache = EntropyNullCache(n_series=300)
        shared = legacy_features(view, 120, cache, pool, x)
        pd.testing.assert_frame_equal(shared, legacy_features(view, 120, cache, pool), check_exact=True)
        pd.testing.assert_frame_equal(x, before, check_exact=True)
