"""Synthetic market: seeded determinism and the named events."""
import hashlib

import numpy as np
import pandas as pd

from market.loaders import write_lakehouse, write_snapshots
from market.synthetic import SyntheticConfig, generate
from market.panel import simple_returns


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_byte_identical_files(tmp_path):
    cfg = SyntheticConfig(seed=3, n_bars=500, n_candidates=40)
    for d in ("a", "b"):
        m = generate(cfg)
        write_lakehouse(m.data, tmp_path / d / "lakehouse")
        write_snapshots(m.snapshots, tmp_path / d / "snapshots")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    m2 = generate(SyntheticConfig(seed=4, n_bars=500, n_candidates=40))
    assert not m2.data.closes.equals(generate(cfg).data.closes)


def test_named_events_exist(synthetic_market):
    m = synthetic_market
    c, ev = m.data.closes, m.events
    r = simple_returns(c)
    assert c.shape[0] == 1461 and sum(len(f) for f in [m.snapshots.frames]) > 40
    # flash crash: the median asset falls more than 20% that day
    fc = ev["flash_crash"]["bar"]
    assert np.nanmedian(r.iloc[fc]) < -0.2
    # bust: final price 0, nothing after
    b = ev["bust"]
    for s in b["symbols"]:
        assert c[s].iloc[b["bar"]] == 0.0 and c[s].iloc[b["bar"] + 1:].isna().all()
    # late listing
    ll = ev["late_listing"]
    for s in ll["symbols"]:
        assert c[s].iloc[: ll["bar"]].isna().all() and c[s].iloc[ll["bar"]:].notna().all()
    # squeeze: x >= 4 within 20 bars
    sq = ev["short_squeeze"]
    s = sq["symbols"][0]
    assert c[s].iloc[sq["bar"] + 19] / c[s].iloc[sq["bar"] - 1] > 4
    # delistings
    for d in ev["delistings"]:
        for s in d["symbols"]:
            assert c[s].iloc[d["bar"]:].isna().all() and c[s].iloc[d["bar"] - 1] > 0
    # benchmark
    assert m.benchmark in c.columns and c[m.benchmark].notna().all()


def test_candidates_cover_the_cases(synthetic_market):
    m = synthetic_market
    pool = pd.concat(m.snapshots.frames.values())
    assert set(pool["direction"]) == {"LONG", "SHORT"}
    assert set(pool["logic"]) == {"rating", "trend", "mom", "rev"}
    assert set(pool["asset_type"]) == {"spot", "perp"}
    vt = pool["Value.Traded"]
    assert (vt < 20e6).any() and (vt > 50e6).any()  # both sides of the floors
    assert pool["sector"].isna().any()  # missing metadata exists
    # the squeezed asset is a SHORT candidate; the delisted ones leave the snapshots
    sq = m.events["short_squeeze"]["symbols"][0]
    assert (pool.loc[pool.symbol == sq, "direction"] == "SHORT").any()
    last = m.snapshots.frames[m.snapshots.dates[-1]]
    for d in m.events["delistings"]:
        assert not set(d["symbols"]) & set(last["symbol"])
    # fields consistent with bars: a snapshot's ROC equals the 9-bar change at its date
    d = m.snapshots.dates[20]
    f = m.snapshots.frames[d].set_index("symbol")
    sym = f.index[0]
    c = m.data.closes[sym]
    i = c.index.get_loc(d)
    assert abs(f.at[sym, "ROC"] - 100 * (c.iloc[i] / c.iloc[i - 9] - 1)) < 1e-9


def test_scanner_snapshots_read_only_the_bars_up_to_their_date():
    """Issue 15: a snapshot is a function of the bars up to its date (and seeded noise). Every bar
    after the date is perturbed (closes and the other OHLCV fields, listings too): that snapshot is
    unchanged byte for byte, while later snapshots do change (so the check can fail). The record
    slots the snapshots decide on carry venue metadata only: no direction or logic that a hidden
    parameter (the drift, the AR kind) could have set."""
    from market.loaders import MarketData
    from market.synthetic import scanner_snapshots

    m = generate(SyntheticConfig(seed=3, n_bars=500, n_candidates=40))
    assert all(set(s) == {"symbol", "exchange", "asset_type", "sector", "slot"} for s in m.scanner_slots)
    rng = np.random.default_rng(0)
    for k in (3, 8):
        d = m.snapshots.dates[k]
        after = np.broadcast_to((m.data.closes.index > d)[:, None], m.data.closes.shape)
        factor = pd.DataFrame(rng.uniform(0.5, 1.5, m.data.closes.shape), index=m.data.closes.index,
                              columns=m.data.closes.columns)
        closes = m.data.closes.where(~after, m.data.closes * factor)
        closes.iloc[-50:, 0] = np.nan  # a delisting after the date, too
        fields = {f: v.where(~after, v * factor) for f, v in m.data.fields.items()}
        snaps = scanner_snapshots(MarketData(closes=closes, fields=fields), list(m.scanner_slots), 3)
        pd.testing.assert_frame_equal(snaps.frames[d], m.snapshots.frames[d], check_exact=True)
        later = m.snapshots.dates[k + 3]
        assert not snaps.frames[later].equals(m.snapshots.frames[later])


def test_scanner_directions_follow_past_momentum():
    """Direction is the sign of a past signal plus noise: LONG records have a higher mean trailing
    60-bar return at their snapshot date than SHORT ones (a scanner reading the past, not the drift)."""
    m = generate(SyntheticConfig(seed=3, n_bars=500, n_candidates=40))
    c = m.data.closes
    ret = {}
    for d, f in m.snapshots.frames.items():
        i = c.index.get_loc(d)
        if i < 60:
            continue
        r = c.iloc[i] / c.iloc[i - 60] - 1
        for sym, dr in zip(f["symbol"], f["direction"]):
            if np.isfinite(r[sym]):
                ret.setdefault(dr, []).append(r[sym])
    assert np.mean(ret["LONG"]) > np.mean(ret["SHORT"]) + 0.05
