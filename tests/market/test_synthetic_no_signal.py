"""The no-signal synthetic market (issue 14): martingale prices, snapshots that never read a price."""
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import market.synthetic as synthetic
from market.synthetic import SyntheticConfig, generate


@pytest.fixture(scope="module")
def quiet():
    return generate(SyntheticConfig(no_signal=True, n_bars=600, n_candidates=40))


def test_snapshots_never_read_a_price(monkeypatch):
    # The default market's snapshot fields come from market.ratings.derive_panel (prices); the
    # no-signal market must not call it. Fail loudly if it does.
    def boom(*a, **k):
        raise AssertionError("derive_panel called: the snapshots read prices")
    monkeypatch.setattr(synthetic, "derive_panel", boom)
    m = generate(SyntheticConfig(no_signal=True, n_bars=450, n_candidates=30))
    assert m.derived is None and m.snapshots.frames
    with pytest.raises(AssertionError, match="derive_panel"):
        generate(SyntheticConfig(n_bars=450, n_candidates=30))


def test_no_planted_events_and_coin_flip_directions(quiet):
    assert {"flash_crash", "bust", "short_squeeze"}.isdisjoint(quiet.events)
    assert quiet.events["no_signal"] is True
    recs = pd.concat(quiet.snapshots.frames.values())
    share_short = (recs.drop_duplicates("symbol")["direction"] == "SHORT").mean()
    assert 0.25 < share_short < 0.75  # coin flips (the default market's shorts follow the drift)
    assert not recs[["Recommend.All", "ROC", "Volatility.D", "ADX"]].isna().any().any()


def test_prices_are_martingales(quiet):
    # zero expected simple return and no autocorrelation: removing the common factor (the
    # cross-sectional mean), the idiosyncratic lag-1 autocorrelation is ~0 (|rho| < 4/sqrt(T) for
    # every asset with enough bars), unlike the default market's trending / reverting assets.
    r = quiet.data.closes.pct_change(fill_method=None).iloc[1:]
    idio = r.sub(r.mean(axis=1), axis=0)
    ac = idio.apply(lambda s: s.dropna().autocorr(1) if s.notna().sum() > 200 else np.nan).dropna()
    assert (ac.abs() < 4 / np.sqrt(len(r))).mean() > 0.95
    # no drift: the mean simple return of each asset is within 4 standard errors of 0
    t = r.mean() / (r.std() / np.sqrt(r.notna().sum()))
    assert (t.dropna().abs() < 4).all()


def test_cli_data_synth_no_signal(tmp_path):
    from tournament.cli import app
    res = CliRunner().invoke(app, ["data", "synth", "--out", str(tmp_path / "m"), "--no-signal"])
    assert res.exit_code == 0, res.output
    assert "[no signal]" in res.output
    assert (tmp_path / "m" / "lakehouse").is_dir() and list((tmp_path / "m" / "snapshots").iterdir())


def test_default_market_unchanged_by_the_switch():
    a = generate(SyntheticConfig(n_bars=450, n_candidates=30))
    b = generate(SyntheticConfig(n_bars=450, n_candidates=30, no_signal=False))
    pd.testing.assert_frame_equal(a.data.closes, b.data.closes)
