"""Numerical helpers of the reports pillar against independent references."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.cluster.hierarchy import linkage

from reports.html import fmt, pct, table
from reports.rundata import equity_drawdown, window_vols
from reports.window_plots import distinct_linkages, leaf_order, valid_linkage


def test_drawdown_matches_empyrical_and_audit():
    import empyrical

    from audit.metrics import max_drawdown

    rng = np.random.default_rng(3)
    r = rng.normal(0.0005, 0.02, 400)
    r[0] = 0.01  # a first gain: empyrical's high-water mark (without the initial capital) agrees then
    s = pd.Series(r, index=pd.date_range("2024-01-01", periods=400, freq="D", tz="UTC"))
    eq, dd = equity_drawdown(s)
    np.testing.assert_allclose(eq.to_numpy(), np.cumprod(1 + r), rtol=1e-12)  # float summation order
    assert dd.min() == pytest.approx(empyrical.max_drawdown(s), rel=1e-12)
    assert dd.min() == pytest.approx(max_drawdown(r), rel=1e-12)
    assert (dd <= 0).all()


def test_drawdown_counts_the_initial_capital_and_liquidation():
    r = pd.Series([-0.1, 0.05, -1.0, 0.0])
    eq, dd = equity_drawdown(r)
    # hand-computed: equity 0.9, 0.945, 0, 0 against a high-water mark of 1 (the initial capital)
    np.testing.assert_allclose(eq.to_numpy(), [0.9, 0.945, 0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(dd.to_numpy(), [-0.1, -0.055, -1.0, -1.0], atol=1e-12)


def test_window_vols_equal_a_plain_loop():
    rng = np.random.default_rng(5)
    rows = [("a" if i < 30 else "b", i % 3, float(x)) for i, x in enumerate(rng.normal(0, 0.01, 60))]
    df = pd.DataFrame(rows, columns=["cell_id", "window", "return"])
    got = window_vols(df, 252).set_index(["cell_id", "window"])
    for (cid, k), g in df.groupby(["cell_id", "window"]):
        x = g["return"].to_numpy()
        ref = math.sqrt(sum((v - x.mean()) ** 2 for v in x) / (len(x) - 1)) * math.sqrt(252)
        assert got.at[(cid, k), "realised_vol"] == pytest.approx(ref, rel=1e-12)
        assert got.at[(cid, k), "n_bars"] == len(x)


def test_distinct_linkages_group_identical_and_skip_invalid():
    rng = np.random.default_rng(1)
    z = linkage(rng.normal(size=(6, 10)), method="ward").tolist()
    labels = [f"c{i}" for i in range(6)]
    engines = {"v4": {"linkage": z, "linkage_labels": labels},
               "v4:alt": {"linkage": z, "linkage_labels": labels},
               "v3.4": {"linkage": linkage(rng.normal(size=(6, 10)), "ward").tolist(), "linkage_labels": labels},
               "bad": {"linkage": [[0, 5, 1.0, 2]], "linkage_labels": ["x", "y"]},
               "negative": {"linkage": [[0, 1, -1.0, 2]], "linkage_labels": ["x", "y"]},
               "random": {"linkage": None}}
    groups = distinct_linkages(engines)
    assert [g[0] for g in groups] == [["v4", "v4:alt"], ["v3.4"]]
    assert sorted(leaf_order(groups[0][1], labels)) == labels


@pytest.mark.parametrize("method", ["ward", "single", "average", "complete"])
def test_valid_linkage_accepts_scipy_output(method):
    z = linkage(np.random.default_rng(2).normal(size=(12, 4)), method=method)
    assert valid_linkage(z)
    bad = z.copy()
    bad[3, 0] = bad[3, 1]  # a cluster merged with itself
    assert not valid_linkage(bad)
    bad = z.copy()
    bad[0, 1] = 12 + 5  # refers to a cluster formed later
    assert not valid_linkage(bad)


def test_fmt_rules():
    assert fmt(None) == "n/a" and fmt(float("nan")) == "n/a" and fmt(np.float64(0.123456)) == "0.1235"
    assert fmt(True) == "yes" and fmt(np.bool_(False)) == "no" and fmt(7) == "7" and fmt("<b>") == "&lt;b&gt;"
    assert pct(-0.2) == "-20.00%" and pct(None) == "n/a"
    assert "none" in table(["a"], [])
