"""Per-regime figures (audit.regimes) against plain numpy, and the ranking-consistency test's size and
power measured by simulation."""
import math

import numpy as np
import pandas as pd
import pytest

from audit.regimes import FIGURE_COLUMNS, ranking_consistency, regime_figures, regime_mix
from audit.statistics import sharpe_ci


def _frame():
    rng = np.random.default_rng(3)
    dates = pd.date_range("2024-01-01", periods=200, freq="D", tz="UTC")
    labels = pd.Series(np.array(["calm", "turbulent", "crisis", None], dtype=object)[
        np.repeat(rng.integers(0, 4, 20), 10)], index=dates, dtype="string")
    ret = pd.concat([pd.DataFrame({"cell_id": c, "date": dates, "return": rng.normal(0.001, s, 200)})
                     for c, s in (("a", 0.01), ("b", 0.03))]
                    + [pd.DataFrame({"cell_id": "flat", "date": dates, "return": 0.0})], ignore_index=True)
    return ret.sample(frac=1.0, random_state=1), labels  # shuffled rows: the kernel must sort by date


def test_figures_equal_plain_numpy():
    ret, labels = _frame()
    seed_of = lambda cid, reg: len(cid) * 100 + len(reg)  # noqa: E731
    fig = regime_figures(ret, labels, 365, seed_of=seed_of, n_boot=200, min_days=20)
    assert list(fig.columns) == FIGURE_COLUMNS and len(fig) == 9
    for row in fig.to_dict("records"):
        g = ret[ret.cell_id == row["cell_id"]].sort_values("date")
        r = g["return"].to_numpy()[(labels.reindex(g["date"]) == row["regime"]).fillna(False).to_numpy()]
        assert row["n_days"] == r.size
        if row["cell_id"] == "flat":
            assert row["status"] == "degenerate" and row["sharpe"] == 0.0 and row["max_drawdown"] == 0.0
            continue
        eq = np.r_[1.0, np.cumprod(1 + r)]
        # tolerance: same formulas, float64 summation order may differ (~1e-16 relative)
        assert row["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(365), rel=1e-12)
        assert row["annual_volatility"] == pytest.approx(r.std(ddof=1) * math.sqrt(365), rel=1e-12)
        assert row["max_drawdown"] == pytest.approx((eq / np.maximum.accumulate(eq) - 1).min(), rel=1e-12)
        ci = sharpe_ci(r, 365, seed=seed_of(row["cell_id"], row["regime"]), n_boot=200)
        assert (row["sharpe_ci_low"], row["sharpe_ci_high"]) == (ci.ci_low, ci.ci_high)


def test_too_few_days_blank_and_mix():
    ret, labels = _frame()
    fig = regime_figures(ret, labels, 365, seed_of=lambda c, r: 1, n_boot=50, min_days=1000)
    assert (fig["status"] == "too_few_days").all() and fig["sharpe"].isna().all()
    mix = regime_mix(labels, labels.index[0], labels.index[-1])
    assert sum(mix.values()) == 200 and mix["unlabelled"] == int(labels.isna().sum())


def test_ranking_consistency_size_and_power():
    """Rejection rate of Kendall's tau at alpha 0.05 (one pair, so Holm changes nothing): on independent
    items (no effect) it stays near 0.05; with a planted common ranking (correlation 0.6) it rejects
    almost always. n = 30 items (the quick preset has 30 trial cells at the base setting)."""
    rng = np.random.default_rng(11)
    n, reps = 30, 600

    def rate(rho):
        hits = 0
        for _ in range(reps):
            x = rng.standard_normal(n)
            y = rho * x + math.sqrt(1 - rho ** 2) * rng.standard_normal(n)
            res = ranking_consistency(pd.DataFrame({"calm": x, "crisis": y}))[0]
            hits += res["pvalue_holm"] <= 0.05
        return hits / reps

    size, power = rate(0.0), rate(0.6)
    # measured 2026-12-06 (this seed): size 0.040, power 0.935; bounds: 0.05 +- 3.5 binomial sd (sd 0.009 at 600 reps)
    assert 0.02 <= size <= 0.082, size
    assert power >= 0.85, power


def test_ranking_consistency_words_and_degenerate():
    t = pd.DataFrame({"calm": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "turbulent": [1.1, 2.1, 2.9, 4.2, 5.0, 6.3],
                      "crisis": [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]})
    res = {(r["regime_a"], r["regime_b"]): r for r in ranking_consistency(t)}
    assert res[("calm", "turbulent")]["tau"] == pytest.approx(1.0)
    assert "agree" in res[("calm", "turbulent")]["verdict"]
    assert "reversed" in res[("calm", "crisis")]["verdict"]
    short = ranking_consistency(pd.DataFrame({"calm": [1.0, np.nan], "crisis": [2.0, 1.0]}))[0]
    assert short["tau"] is None and "not tested" in short["verdict"]


def _regime_days_reference(returns, labels, regimes=("calm", "turbulent", "crisis")):
    """``regime_figures``' day selection before the positional lookup (main at 6704774), verbatim."""
    lab = labels.astype("string")
    out = {}
    for cid, g in returns.groupby("cell_id", sort=True, observed=True):
        g = g.sort_values("date")
        day_regime = lab.reindex(pd.DatetimeIndex(g["date"]))
        r_all = g["return"].to_numpy(dtype=np.float64)
        for reg in regimes:
            out[(str(cid), reg)] = r_all[(day_regime == reg).fillna(False).to_numpy(dtype=bool)]
    return out


def test_figures_equal_the_previous_selection():
    """Same rows bit for bit as the reindex-based selection: unlabelled days, days missing from the
    labels, a label outside the regimes, shuffled rows."""
    ret, labels = _frame()
    labels = labels.copy()
    labels.iloc[5:9] = "other"
    extra = pd.DataFrame({"cell_id": "late", "date": pd.date_range("2024-05-01", periods=260, freq="D", tz="UTC"),
                          "return": np.random.default_rng(9).normal(0.0, 0.01, 260)})
    ret = pd.concat([ret, extra], ignore_index=True)  # runs past the labels' last date
    ref = _regime_days_reference(ret, labels)
    seed_of = lambda cid, reg: len(cid) * 100 + len(reg)  # noqa: E731
    fig = regime_figures(ret, labels, 365, seed_of=seed_of, n_boot=100, min_days=5)
    for row in fig.to_dict("records"):
        r = ref[(row["cell_id"], row["regime"])]
        assert row["n_days"] == r.size
        if r.size >= 5:
            ci = sharpe_ci(r, 365, seed=seed_of(row["cell_id"], row["regime"]), n_boot=100)
            assert (row["sharpe"], row["sharpe_ci_low"], row["sharpe_ci_high"]) == (ci.sharpe, ci.ci_low, ci.ci_high)
