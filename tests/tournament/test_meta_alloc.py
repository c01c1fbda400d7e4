"""The meta allocator (issue 17): no look-ahead, min_history, and weights against plain numpy/scipy."""
import numpy as np
import pandas as pd
import pytest
from scipy.cluster.hierarchy import linkage, leaves_list
from scipy.spatial.distance import squareform

from tournament.meta import meta_windows
from tournament.meta_align import union_calendar
from tournament.meta_alloc import meta_weights


def _sleeves(seed: int = 1):
    """Three sleeves: two 7-day ones and a weekday one starting later (so it lacks history at first)."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2023-01-01", periods=300, freq="D", tz="UTC")
    f = rng.normal(0, 0.01, len(days))
    a = pd.Series(0.6 * f + rng.normal(0, 0.012, len(days)), index=days)
    b = pd.Series(0.3 * f + rng.normal(0, 0.006, len(days)), index=days)
    wd = days[(days.day_of_week < 5) & (days >= days[90])]
    c = pd.Series(rng.normal(0.0005, 0.015, len(wd)), index=wd)
    return {"a": a, "b": b, "c": c}


def independent_carry(series: dict, start, end) -> pd.DataFrame:
    """Plain re-implementation of the documented rule: common trading days in (start, end]; each
    sleeve's returns since the previous common day compounded into the day (a loop, no searchsorted)."""
    cut = {k: s[((s.index > start) if start is not None else True) & (s.index <= end)] for k, s in series.items()}
    common = sorted(set.intersection(*(set(s.index) for s in cut.values())))
    out = {}
    for k, s in cut.items():
        vals = []
        for prev, day in zip(common[:-1], common[1:]):
            seg = s[(s.index > prev) & (s.index <= day)].to_numpy()
            vals.append(np.prod(1.0 + seg) - 1.0)
        out[k] = vals
    return pd.DataFrame(out, index=common[1:])[sorted(series)]


def independent_hrp(cov: np.ndarray) -> np.ndarray:
    """Lopez de Prado's HRP, written out: single linkage on sqrt(0.5(1-rho)), leaves order, recursive
    bisection with inverse-variance cluster variances (the per-cluster loop)."""
    sd = np.sqrt(np.diag(cov))
    rho = cov / np.outer(sd, sd)
    d = np.sqrt(np.clip(0.5 * (1 - rho), 0, 1))
    np.fill_diagonal(d, 0)
    order = list(leaves_list(linkage(squareform(d, checks=False), method="single")))
    w = np.ones(len(cov))
    clusters = [order]
    while clusters:
        nxt = []
        for c in clusters:
            if len(c) < 2:
                continue
            h = len(c) // 2
            left, right = c[:h], c[h:]

            def var(ix):
                sub = cov[np.ix_(ix, ix)]
                iv = 1 / np.diag(sub)
                iv = iv / iv.sum()
                return iv @ sub @ iv
            vl, vr = var(left), var(right)
            alpha = 1 - vl / (vl + vr)
            w[left] *= alpha
            w[right] *= 1 - alpha
            nxt += [left, right]
        clusters = nxt
    return w / w.sum()


@pytest.mark.parametrize("allocator", ["inverse_vol", "hrp", "equal_weight", "min_variance"])
def test_perturbing_returns_after_a_cutoff_leaves_earlier_weights_unchanged(allocator):
    s = _sleeves()
    cal = union_calendar(s)
    wins = meta_windows(s, cal, step=15, train_window=60, min_history=20, gap=1)
    assert len(wins) > 10
    k = 8
    c = cal[wins[k].cutoff]
    rng = np.random.default_rng(9)
    bumped = {n: r.where(r.index <= c, r * (1 + rng.normal(0, 3, len(r))) + rng.normal(0, 0.05, len(r)))
              for n, r in s.items()}
    for w in wins:
        before = meta_weights(s, cal, w.cutoff, allocator, 60, 20)
        after = meta_weights(bumped, cal, w.cutoff, allocator, 60, 20)
        if w.index <= k:
            assert after.weights == before.weights, w.index  # bit for bit
    # the perturbation is not idle: a later decision moves (equal_weight's cannot)
    late = meta_weights(bumped, cal, wins[-1].cutoff, allocator, 60, 20).weights
    if allocator != "equal_weight":
        assert late != meta_weights(s, cal, wins[-1].cutoff, allocator, 60, 20).weights


def test_a_sleeve_without_min_history_gets_zero_weight():
    s = _sleeves()
    cal = union_calendar(s)
    first_c = s["c"].index[0]
    # 10 weekday returns of c by this cut-off (< min_history 20): weight 0; a and b share it all
    cut = int(np.flatnonzero(cal == s["c"].index[9])[0])
    d = meta_weights(s, cal, cut, "inverse_vol", 60, 20)
    assert d.n_history["c"] == 10 and d.weights["c"] == 0.0 and "c" not in d.eligible
    assert d.weights["a"] + d.weights["b"] == pytest.approx(1.0, abs=1e-15)
    # at exactly 20 it joins
    cut = int(np.flatnonzero(cal == s["c"].index[19])[0])
    d = meta_weights(s, cal, cut, "inverse_vol", 60, 20)
    assert d.weights["c"] > 0 and first_c <= cal[cut]
    # nobody eligible: cash
    d = meta_weights(s, cal, 5, "hrp", 60, 20)
    assert sum(d.weights.values()) == 0.0 and d.eligible == ()


@pytest.mark.parametrize("cut_at", [120, 200, 280])
def test_inverse_vol_and_hrp_match_independent_recomputation(cut_at):
    s = _sleeves()
    cal = union_calendar(s)
    start = cal[cut_at - 60]
    x = independent_carry(s, start, cal[cut_at])
    cov = np.cov(x.to_numpy(), rowvar=False, ddof=1)
    iv = 1 / np.sqrt(np.diag(cov))
    want_iv = dict(zip(x.columns, iv / iv.sum()))
    want_hrp = dict(zip(x.columns, independent_hrp(cov)))
    got_iv = meta_weights(s, cal, cut_at, "inverse_vol", 60, 20).weights
    got_hrp = meta_weights(s, cal, cut_at, "hrp", 60, 20).weights
    for n in x.columns:
        assert got_iv[n] == pytest.approx(want_iv[n], abs=1e-10)
        assert got_hrp[n] == pytest.approx(want_hrp[n], abs=1e-10)


def test_ledoit_wolf_and_min_variance_against_sklearn_and_scipy():
    """inverse_vol with covariance ledoit_wolf: sklearn's LedoitWolf on the carried returns (to 1e-12);
    min_variance: scipy's SLSQP on the long-only budget problem (to 1e-5 in weight: SLSQP's ftol 1e-15
    leaves ~1e-6 in the weights; the native QP solves to 1e-10)."""
    from scipy.optimize import minimize
    from sklearn.covariance import LedoitWolf

    s = _sleeves()
    cal = union_calendar(s)
    cut = 250
    x = independent_carry(s, cal[cut - 60], cal[cut])
    lw = LedoitWolf().fit(x.to_numpy()).covariance_
    iv = 1 / np.sqrt(np.diag(lw))
    got = meta_weights(s, cal, cut, "inverse_vol", 60, 20, covariance="ledoit_wolf").weights
    for n, v in zip(x.columns, iv / iv.sum()):
        assert got[n] == pytest.approx(v, abs=1e-12)
    cov = np.cov(x.to_numpy(), rowvar=False, ddof=1)
    n = cov.shape[0]
    res = minimize(lambda w: w @ cov @ w * 1e4, np.full(n, 1 / n), jac=lambda w: 2e4 * cov @ w, method="SLSQP",
                   bounds=[(0, 1)] * n, constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
                   options={"ftol": 1e-15, "maxiter": 500})
    got = meta_weights(s, cal, cut, "min_variance", 60, 20).weights
    for k, v in zip(x.columns, res.x):
        assert got[k] == pytest.approx(v, abs=1e-5)
    w = np.array([got[k] for k in x.columns])
    assert w @ cov @ w <= res.x @ cov @ res.x * (1 + 1e-9)
