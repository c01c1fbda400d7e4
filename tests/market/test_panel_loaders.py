"""Loaders round-trip, and every bad input gets a DataError naming the file, symbol, date or field."""
import json

import numpy as np
import pandas as pd
import pytest

from contracts.errors import DataError
from market.loaders import (MarketData, load_lakehouse, load_snapshots, load_wide, write_lakehouse,
                            write_snapshots)
from market.panel import simple_returns, validate_panel


def _panel(n=30, syms=("AAAUSDT", "BBBUSDT.P")):
    idx = pd.date_range("2022-01-01", periods=n, tz="UTC")
    rng = np.random.default_rng(0)
    return pd.DataFrame({s: 100 * np.cumprod(1 + rng.normal(0, 0.02, n)) for s in syms}, index=idx)


def _write_csv(folder, sym, df):
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / f"{sym}.csv", index=False)


def _ohlcv(closes: pd.Series):
    return pd.DataFrame({"date": closes.index.strftime("%Y-%m-%d"), "open": closes.values, "high": closes.values,
                         "low": closes.values, "close": closes.values, "volume": 1.0})


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_lakehouse_round_trip(tmp_path, fmt):
    closes = _panel()
    closes.iloc[:5, 1] = np.nan  # listed late
    data = MarketData(closes=validate_panel(closes))
    write_lakehouse(data, tmp_path / "lh", fmt=fmt)
    back = load_lakehouse(tmp_path / "lh")
    pd.testing.assert_frame_equal(back.closes, data.closes, check_freq=False, check_index_type=False,
                                  check_exact=True)


def test_synthetic_round_trip_exact(tmp_path, synthetic_market):
    m = synthetic_market
    write_lakehouse(m.data, tmp_path / "lakehouse")
    write_snapshots(m.snapshots, tmp_path / "snapshots")
    back = load_lakehouse(tmp_path / "lakehouse")
    assert back.closes.equals(m.data.closes)
    for f in ("open", "high", "low", "volume"):
        np.testing.assert_array_equal(back.fields[f].to_numpy(), m.data.fields[f].to_numpy())
    snaps = load_snapshots(tmp_path / "snapshots")
    assert snaps.dates == m.snapshots.dates
    d = snaps.dates[10]
    a = snaps.frames[d].drop(columns="snapshot_date").reset_index(drop=True)
    b = m.snapshots.frames[d].drop(columns="snapshot_date").reset_index(drop=True)
    for col in a.columns:
        assert a[col].astype(object).where(a[col].notna(), None).tolist() == \
            b[col].astype(object).where(b[col].notna(), None).tolist(), col


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_lakehouse(tmp_path / "nope")


def test_unparseable_file(tmp_path):
    (tmp_path / "lh").mkdir()
    (tmp_path / "lh" / "AAA.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="AAA.parquet.*cannot be read"):
        load_lakehouse(tmp_path / "lh")


def test_duplicate_dates(tmp_path):
    c = _panel()["AAAUSDT"]
    df = _ohlcv(c)
    df.loc[3, "date"] = df.loc[2, "date"]
    _write_csv(tmp_path / "lh", "AAAUSDT", df)
    with pytest.raises(DataError, match=r"AAAUSDT.*duplicate date 2022-01-03"):
        load_lakehouse(tmp_path / "lh")


def test_unsorted_dates(tmp_path):
    c = _panel()["AAAUSDT"]
    df = _ohlcv(c)
    df.loc[[5, 6], "date"] = df.loc[[6, 5], "date"].values
    _write_csv(tmp_path / "lh", "AAAUSDT", df)
    with pytest.raises(DataError, match=r"AAAUSDT.*not increasing at 2022-01-06"):
        load_lakehouse(tmp_path / "lh")


@pytest.mark.parametrize("bad,msg", [(-1.0, "negative price on 2022-01-05"), (np.inf, "infinite price on 2022-01-05")])
def test_negative_or_inf_price(tmp_path, bad, msg):
    df = _ohlcv(_panel()["AAAUSDT"])
    df.loc[4, "close"] = bad
    _write_csv(tmp_path / "lh", "AAAUSDT", df)
    with pytest.raises(DataError, match=f"AAAUSDT.*{msg}"):
        load_lakehouse(tmp_path / "lh")


def test_zero_followed_by_prices(tmp_path):
    df = _ohlcv(_panel()["AAAUSDT"])
    df.loc[10, "close"] = 0.0
    _write_csv(tmp_path / "lh", "AAAUSDT", df)
    with pytest.raises(DataError, match="AAAUSDT.*price 0 on 2022-01-11 followed by more prices"):
        load_lakehouse(tmp_path / "lh")


def test_zero_as_final_price_is_legal():
    closes = _panel()
    closes.iloc[20, 0] = 0.0
    closes.iloc[21:, 0] = np.nan
    p = validate_panel(closes)
    r = simple_returns(p)
    assert r.iloc[20, 0] == -1.0 and np.isnan(r.iloc[21:, 0]).all()


def test_gap_inside_history():
    closes = _panel()
    closes.iloc[10, 1] = np.nan
    with pytest.raises(DataError, match=r"'BBBUSDT.P'.*missing price on 2022-01-11"):
        validate_panel(closes)


def test_unsafe_symbol(tmp_path):
    (tmp_path / "w.csv").write_text("date,../etc\n2022-01-01,1\n2022-01-02,2\n")
    with pytest.raises(DataError, match="not a safe file name"):
        load_wide(tmp_path / "w.csv")
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    (snaps / "2022-01-01.json").write_text(json.dumps([{"symbol": "a/b", "logic": "mom"}]))
    with pytest.raises(DataError, match="not a safe file name"):
        load_snapshots(snaps)


def test_wide_file_round_trip(tmp_path):
    closes = validate_panel(_panel())
    df = closes.reset_index()
    df["date"] = df["date"].dt.strftime("%Y-%m-%d")
    df.to_csv(tmp_path / "wide.csv", index=False, float_format="%.17g")
    back = load_wide(tmp_path / "wide.csv")
    np.testing.assert_array_equal(back.closes.to_numpy(), closes.to_numpy())


def test_malformed_json(tmp_path):
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    (snaps / "2022-01-01.json").write_text('[{"symbol": "AAA", "logic": "mom",}]')
    with pytest.raises(DataError, match=r"2022-01-01.json: malformed JSON at line 1"):
        load_snapshots(snaps)


def test_bad_field_named(tmp_path):
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    (snaps / "2022-01-01.json").write_text(json.dumps([{"symbol": "AAA", "logic": "mom", "ADX": "high"}]))
    with pytest.raises(DataError, match=r"record 0 \(symbol 'AAA'\): field 'ADX'"):
        load_snapshots(snaps)


def test_snapshot_file_name_must_be_a_date(tmp_path):
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    (snaps / "latest.json").write_text("[]")
    with pytest.raises(DataError, match="YYYY-MM-DD"):
        load_snapshots(snaps)


@pytest.mark.parametrize("bad", [-5.0, np.nan, np.inf])
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_lakehouse_rejects_invalid_volume_naming_file_and_date(tmp_path, bad, fmt):
    """Issue 15: ``Value.Traded = close x volume`` feeds the liquidity veto and score, so a negative,
    missing or infinite volume on a row with a close is a one-line DataError naming file and date."""
    df = _ohlcv(_panel()["AAAUSDT"])
    df.loc[7, "volume"] = bad
    folder = tmp_path / "lh"
    folder.mkdir()
    path = folder / f"AAAUSDT.{fmt}"
    df.to_csv(path, index=False) if fmt == "csv" else df.to_parquet(path, index=False)
    with pytest.raises(DataError) as exc:
        load_lakehouse(folder)
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg and "2022-01-08" in msg and "volume" in msg


def test_lakehouse_accepts_an_empty_volume_column(tmp_path):
    """``write_lakehouse`` writes an all-empty volume column for close-only data: "no volume"."""
    df = _ohlcv(_panel()["AAAUSDT"])
    df["volume"] = np.nan
    _write_csv(tmp_path / "lh", "AAAUSDT", df)
    assert load_lakehouse(tmp_path / "lh").closes.shape == (30, 1)
