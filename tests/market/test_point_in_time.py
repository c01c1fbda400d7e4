"""The pool and its fields are point-in-time: no snapshot dated after t is used at cut-off t."""
import json

import numpy as np
import pandas as pd
import pytest

from contracts import Window
from contracts.errors import DataError
from market.calendar import CRYPTO
from market.loaders import load_snapshots
from market.ratings import derive_panel, derive_symbol, fill_missing_fields
from market.view import PastView


def _write(folder, date, recs):
    folder.mkdir(exist_ok=True)
    (folder / f"{date}.json").write_text(json.dumps(recs))


def test_pool_as_of_never_uses_a_later_snapshot(tmp_path):
    s = tmp_path / "s"
    _write(s, "2022-01-01", [{"symbol": "AAA", "logic": "mom", "direction": "LONG"}])
    _write(s, "2022-02-01", [{"symbol": "AAA", "logic": "mom", "direction": "LONG"},
                             {"symbol": "BBB", "logic": "rev", "direction": "SHORT"}])
    store = load_snapshots(s)
    assert list(store.pool_as_of(pd.Timestamp("2022-01-31 23:59", tz="UTC"))["symbol"]) == ["AAA"]
    assert list(store.pool_as_of(pd.Timestamp("2022-02-01", tz="UTC"))["symbol"]) == ["AAA", "BBB"]
    with pytest.raises(DataError, match="no candidate snapshot dated at or before 2021-12-31"):
        store.pool_as_of(pd.Timestamp("2021-12-31", tz="UTC"))


def test_view_cuts_at_the_cutoff(synthetic_market):
    m = synthetic_market
    w = Window(index=0, cutoff=400, train_start=149, step_size=20, n_test=20)
    v = PastView.at(m.data.closes, m.snapshots, w, CRYPTO, m.benchmark)
    assert v.closes.index[-1] == m.data.closes.index[400]
    assert len(v.train_closes) == 252
    assert (v.pool["snapshot_date"] <= v.cutoff_date).all()
    later = [d for d in m.snapshots.dates if d > v.cutoff_date]
    assert later and v.pool["snapshot_date"].iloc[0] == max(d for d in m.snapshots.dates if d <= v.cutoff_date)


def test_undated_export_is_flagged(tmp_path):
    p = tmp_path / "export.json"
    p.write_text(json.dumps([{"symbol": "AAA", "logic": "mom", "direction": "LONG"}]))
    store = load_snapshots(p)
    assert store.point_in_time is False
    assert list(store.pool_as_of(pd.Timestamp("1990-01-01", tz="UTC"))["symbol"]) == ["AAA"]


def test_derived_fields_use_only_past_bars(synthetic_market):
    """Truncating the panel at t leaves every derived field at t unchanged (causal indicators)."""
    m = synthetic_market
    syms = list(m.data.closes.columns[:6])
    closes = m.data.closes[syms]
    fields = {k: v[syms] for k, v in m.data.fields.items()}
    full = derive_panel(closes, fields)
    t = 500
    cut = derive_panel(closes.iloc[: t + 1], {k: v.iloc[: t + 1] for k, v in fields.items()})
    for f in full:
        np.testing.assert_allclose(cut[f].iloc[-1].to_numpy(), full[f].iloc[t].to_numpy(), rtol=1e-12,
                                   equal_nan=True, err_msg=f)


def test_fill_missing_fields_as_of(synthetic_market):
    m = synthetic_market
    closes = m.data.closes
    derived = derive_panel(closes[["BTCUSDT"]], {k: v[["BTCUSDT"]] for k, v in m.data.fields.items()})
    pool = pd.DataFrame({"symbol": ["BTCUSDT"], "ADX": [np.nan], "Recommend.All": [0.5], "Recommend.MA": [np.nan],
                         "ROC": [np.nan], "Volatility.D": [np.nan], "Value.Traded": [np.nan]})
    t = closes.index[300]
    out = fill_missing_fields(pool, derived, t)
    assert out["Recommend.All"].iloc[0] == 0.5  # kept from the snapshot
    assert out["ADX"].iloc[0] == derived["ADX"].loc[t, "BTCUSDT"]


def test_ma_rating_matches_hand_counted_votes():
    """A steadily rising series: close above every MA -> every MA votes buy -> Recommend.MA = 1.

    Then one sharp drop on the last bar puts the close below the short MAs only; counted by hand:
    SMA/EMA 10, 20, 30 and Hull 9, Ichimoku base, VWMA 20 are above the close (sell), while SMA/EMA
    50, 100, 200 are below it (buy)."""
    n = 260
    idx = pd.date_range("2020-01-01", periods=n, tz="UTC")
    c = pd.Series(100.0 * 1.01 ** np.arange(n), index=idx)
    vol = pd.Series(1.0, index=idx)
    d = derive_symbol(c, c * 1.001, c * 0.999, vol)
    assert d["Recommend.MA"].iloc[-1] == 1.0
    c2 = c.copy()
    c2.iloc[-1] = c.iloc[-1] * 0.80  # -20% on the last bar
    d2 = derive_symbol(c2, c2 * 1.001, c2 * 0.999, vol)
    from market.ratings import ma_votes
    votes = ma_votes(c2, c2 * 1.001, c2 * 0.999, vol).iloc[-1]
    # the close is now below SMA/EMA 10..100 of a 1%/day trend (their lag < 20%) and above SMA/EMA 200?
    # 1.01**-k averaged: the MA sits at close_prev * mean(1.01**-j). Count from the data:
    prev = c.iloc[-2]
    expected = {}
    for n_ma in (10, 20, 30, 50, 100, 200):
        window = np.r_[c.iloc[-n_ma:-1].to_numpy(), c2.iloc[-1]]
        sma = window.mean()
        expected[f"SMA{n_ma}"] = 1.0 if sma < c2.iloc[-1] else -1.0
    for k, v in expected.items():
        assert votes[k] == v, k
    assert d2["Recommend.MA"].iloc[-1] == pytest.approx(votes.mean())
    assert prev > c2.iloc[-1]


def test_oscillator_votes_hand_checked():
    """RSI of a long strictly rising series is 100 (> 70) but rising -> no sell; MACD > signal -> buy."""
    from market.ratings import oscillator_votes

    n = 120
    idx = pd.date_range("2020-01-01", periods=n, tz="UTC")
    c = pd.Series(100.0 * 1.01 ** np.arange(n), index=idx)
    v = oscillator_votes(c, c * 1.001, c * 0.999).iloc[-1]
    assert v["MACD"] == 1.0  # MACD of an accelerating (exponential) series is above its signal
    assert v["RSI"] == 0.0   # RSI = 100: above 70 but not falling -> neutral
    assert v["UO"] == 1.0    # every bar closes at its high: UO near 100 > 70 -> buy
    assert v["Mom"] == 1.0   # 10-bar momentum of an exponential series keeps rising


def _fill_by_slices(pool, derived, asof):
    """fill_missing_fields as it was: each field's table sliced up to ``asof``, mapped by symbol."""
    out = pool.copy()
    for f in ("Recommend.All", "Recommend.MA", "ROC", "Volatility.D", "ADX", "Value.Traded"):
        table = derived[f].loc[:asof]
        if table.empty:
            continue
        last = table.iloc[-1]
        fill = out["symbol"].map(last)
        out[f] = out[f].astype(float).where(out[f].notna(), fill)
    return out


@pytest.mark.parametrize("dtype", ["str", "string", object])
@pytest.mark.parametrize("storage", ["python", "pyarrow"])
def test_fill_missing_fields_equals_the_sliced_tables(storage, dtype):
    """The row as of the cut-off by position and the symbols looked up once give the frame the
    slices and per-field maps gave (values, dtypes, index): cut-offs before the first date, on and
    between dates and after the last; symbols without a derived column; NaN and None cells."""
    rng = np.random.default_rng(8)
    dates = pd.date_range("2023-01-01", periods=40, freq="2D", tz="UTC")
    syms = [f"S{i}USDT" for i in range(8)]
    fields = ("Recommend.All", "Recommend.MA", "ROC", "Volatility.D", "ADX", "Value.Traded")
    derived = {f: pd.DataFrame(rng.normal(size=(40, 8)), index=dates, columns=syms) for f in fields}
    derived["ADX"].iloc[5:9, 2] = np.nan
    with pd.option_context("mode.string_storage", storage):
        for t in range(30):
            n = int(rng.integers(1, 12))
            pool = pd.DataFrame({"symbol": pd.array(list(rng.choice(syms + ["NOPE"], size=n)), dtype=dtype),
                                 **{f: np.where(rng.random(n) < 0.5, np.nan, rng.normal(size=n)) for f in fields}},
                                index=pd.RangeIndex(10, 10 + n))
            if t % 3 == 0:
                pool["ADX"] = pool["ADX"].astype(object).where(pool["ADX"].notna(), None)
            asof = dates[0] - pd.Timedelta(days=1) if t == 0 else (
                dates[-1] + pd.Timedelta(days=3) if t == 1 else dates[int(rng.integers(0, 40))]
                + pd.Timedelta(days=int(rng.integers(0, 2))))
            pd.testing.assert_frame_equal(fill_missing_fields(pool, derived, asof),
                                          _fill_by_slices(pool, derived, asof), check_exact=True)
