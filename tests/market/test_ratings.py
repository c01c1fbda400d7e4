"""The 2-D derivation of the rating fields equals the per-symbol ``ta`` reference; its cache is keyed
by content.

Reference: ``tests/market/ta_reference.py``, the per-symbol implementation through ``ta``'s indicator
classes (the code the ratings ran on before). Tolerance: ``rtol=1e-12``. Both run the same pandas
rolling/ewm kernels on the same values, and the two hand-written pieces (ADX's recursions and the
CCI's mean absolute deviation) do ta's arithmetic in ta's order, so the values are in fact equal to
the bit on these panels; the tolerance only allows a last-bit difference of a summation order
between numpy builds. A flipped vote would move a rating by at least 1/15, far beyond it.
"""
import numpy as np
import pandas as pd
import pytest
from ta.trend import WMAIndicator

from market import ratings
from market.ratings import DERIVED_FIELDS, DerivedCache, bars_digest, derive_panel, wma
from tests.market import ta_reference as ref

RTOL = 1e-12


def _reference_panel(closes, fields):
    return ref.derive_panel(closes, fields)


def _assert_equal_panels(got, exp, syms):
    for f in DERIVED_FIELDS:
        a, e = got[f][syms].to_numpy(), exp[f][syms].to_numpy()
        assert np.array_equal(np.isnan(a), np.isnan(e)), f"{f}: NaN pattern differs"
        np.testing.assert_allclose(a, e, rtol=RTOL, atol=0, equal_nan=True, err_msg=f)


def test_fast_equals_ta_reference_on_the_synthetic_market(synthetic_market):
    """Every third symbol plus the event symbols (bust to 0, late listing, delistings, squeeze)."""
    m = synthetic_market
    ev = m.events
    special = set(ev["bust"]["symbols"]) | set(ev["late_listing"]["symbols"]) | set(ev["short_squeeze"]["symbols"])
    special |= {s for d in ev["delistings"] for s in d["symbols"]}
    syms = sorted(set(m.data.closes.columns[::3]) | special)
    assert len(syms) >= 25
    closes = m.data.closes[syms]
    fields = {k: v[syms] for k, v in m.data.fields.items()}
    exp = _reference_panel(closes, fields)
    got = m.derived  # the market's own derived panel: the fast code over all 76 symbols at once
    _assert_equal_panels(got, exp, syms)
    assert got["Recommend.All"][syms].notna().sum().sum() > 0.9 * closes.notna().sum().sum()


def _awkward_panel(seed=3, n=320):
    """Short histories (1, 2, 5, 13, 14, 15, 27, 28, 29, 60 bars), interior gaps, late listing,
    delisting, flat stretches (zero ranges), a price going to 0 and zero volume."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2021-01-01", periods=n, tz="UTC")
    cols = {}
    for length in (1, 2, 5, 13, 14, 15, 27, 28, 29, 60):
        s = np.full(n, np.nan)
        start = int(rng.integers(0, n - length))
        s[start:start + length] = 50 * np.exp(np.cumsum(0.03 * rng.standard_normal(length)))
        cols[f"L{length}"] = s
    full = 100 * np.exp(np.cumsum(0.04 * rng.standard_normal((n, 6)), axis=0))
    for j in range(6):
        cols[f"F{j}"] = full[:, j].copy()
    cols["F0"][rng.choice(n, 40, replace=False)] = np.nan          # scattered gaps
    cols["F1"][100:130] = np.nan                                       # one long gap
    cols["F2"][:150] = np.nan                                          # late listing
    cols["F3"][200:] = np.nan                                          # delisting
    cols["F4"][50:90] = cols["F4"][49]                                 # flat: zero ranges, zero moves
    cols["F5"][250:] = 0.0                                             # goes to 0
    closes = pd.DataFrame(cols, index=idx)
    rng_range = np.abs(0.02 * rng.standard_normal(closes.shape))
    high = closes * (1 + rng_range)
    low = closes / (1 + rng_range)
    high.iloc[50:90, high.columns.get_loc("F4")] = closes["F4"].iloc[50:90]
    low.iloc[50:90, low.columns.get_loc("F4")] = closes["F4"].iloc[50:90]
    volume = closes.notna() * np.exp(rng.standard_normal(closes.shape)) * 1e6
    volume = volume.where(closes.notna())
    volume["F4"] = 0.0
    return closes, {"high": high, "low": low, "volume": volume}


@pytest.mark.parametrize("which", ["ohlcv", "close_only", "no_volume"])
def test_fast_equals_ta_reference_on_short_histories_and_gaps(which):
    closes, fields = _awkward_panel()
    if which == "close_only":
        fields = {}
    elif which == "no_volume":
        fields = {k: v for k, v in fields.items() if k != "volume"}
    with np.errstate(divide="ignore", invalid="ignore"):
        exp = _reference_panel(closes, fields)
    got = derive_panel(closes, fields)
    _assert_equal_panels(got, exp, list(closes.columns))
    # the short histories: 1 bar has nothing, 2 bars have ROC/Volatility.D NaN but a vote-free NaN rating
    assert got["Recommend.All"]["L1"].isna().all()
    assert got["ADX"]["L27"].isna().all() and got["ADX"]["L28"].notna().sum() == 1
    # the gaps stay gaps, and the indicators run over the traded bars only
    assert got["Recommend.All"]["F0"][closes["F0"].isna()].isna().all()
    assert got["Recommend.MA"]["F2"].iloc[:150].isna().all()


def test_derived_fields_use_only_past_bars_with_gaps():
    """Causal on the awkward panel too: truncating at t leaves every field at t unchanged."""
    closes, fields = _awkward_panel()
    full = derive_panel(closes, fields)
    for t in (110, 140, 210, 300):
        cut = derive_panel(closes.iloc[: t + 1], {k: v.iloc[: t + 1] for k, v in fields.items()})
        for f in full:
            np.testing.assert_array_equal(cut[f].iloc[-1].to_numpy(), full[f].iloc[t].to_numpy(), err_msg=f)


def test_wma_equals_ta():
    x = pd.Series(np.random.default_rng(0).standard_normal(200).cumsum())
    np.testing.assert_allclose(wma(x, 9).to_numpy(), WMAIndicator(x, 9).wma().to_numpy(), rtol=1e-12,
                               atol=1e-12, equal_nan=True)  # convolution vs ta's rolling dot: summation order


def test_cache_hits_on_same_content_and_misses_on_changed_bars(tmp_path):
    closes, fields = _awkward_panel()
    cache = DerivedCache(tmp_path / "derived")
    first = cache.derive(closes, fields)
    assert (cache.hits, cache.misses) == (0, 1)
    again = cache.derive(closes.copy(), {k: v.copy() for k, v in fields.items()})  # same content, new objects
    assert (cache.hits, cache.misses) == (1, 1)
    for f in DERIVED_FIELDS:
        pd.testing.assert_frame_equal(again[f], first[f], check_exact=True, check_freq=False)
    # a changed close, high, volume, date or symbol is another key and is derived again
    c2 = closes.copy()
    c2.iloc[200, c2.columns.get_loc("F1")] *= 1.01
    h2 = dict(fields, high=fields["high"] * 1.0)
    h2["high"].iloc[200, closes.columns.get_loc("F5")] *= 1.01
    v2 = dict(fields, volume=fields["volume"] * 2.0)
    keys = {bars_digest(closes, fields), bars_digest(c2, fields), bars_digest(closes, h2),
            bars_digest(closes, v2), bars_digest(closes.rename(columns={"F0": "G0"}), fields),
            bars_digest(closes.set_axis(closes.index + pd.Timedelta(days=1)), fields)}
    assert len(keys) == 6
    changed = cache.derive(c2, fields)
    assert (cache.hits, cache.misses) == (1, 2)
    assert not changed["Recommend.All"]["F1"].equals(first["Recommend.All"]["F1"])
    pd.testing.assert_frame_equal(changed["ROC"], derive_panel(c2, fields)["ROC"], check_exact=True,
                                  check_freq=False)
    assert len([p for p in (tmp_path / "derived").iterdir() if not p.name.startswith(".")]) == 2


def test_cache_invalidated_by_a_new_ratings_version(tmp_path, monkeypatch):
    closes, fields = _awkward_panel()
    cache = DerivedCache(tmp_path)
    cache.derive(closes, fields)
    monkeypatch.setattr(ratings, "RATINGS_VERSION", "changed-definition")
    cache.derive(closes, fields)
    assert (cache.hits, cache.misses) == (0, 2)


def test_cache_rederives_a_damaged_entry(tmp_path):
    closes, fields = _awkward_panel()
    cache = DerivedCache(tmp_path)
    first = cache.derive(closes, fields)
    (tmp_path / cache.last_key / "ADX.parquet").write_bytes(b"not parquet")
    again = cache.derive(closes, fields)
    assert (cache.hits, cache.misses) == (0, 2)
    pd.testing.assert_frame_equal(again["ADX"], first["ADX"], check_exact=True)


def test_synthetic_market_with_a_cache_is_the_same_market(tmp_path):
    """A second generation of the same market reads its derived fields from the cache: the same
    panel and the same snapshots (whose missing fields come from it)."""
    from market.synthetic import SyntheticConfig, generate

    cfg = SyntheticConfig(n_bars=420, n_candidates=30)
    cache = DerivedCache(tmp_path)
    plain = generate(cfg)
    first = generate(cfg, derived_cache=cache)
    second = generate(cfg, derived_cache=cache)
    assert (cache.hits, cache.misses) == (1, 1)
    for f in DERIVED_FIELDS:
        pd.testing.assert_frame_equal(second.derived[f], plain.derived[f], check_exact=True, check_freq=False)
        pd.testing.assert_frame_equal(first.derived[f], plain.derived[f], check_exact=True, check_freq=False)
    for d in plain.snapshots.dates:
        pd.testing.assert_frame_equal(second.snapshots.frames[d], plain.snapshots.frames[d], check_exact=True)
