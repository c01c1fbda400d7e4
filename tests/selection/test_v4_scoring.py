"""Probability mappings, Log-MPS and the ridge challenger.

References, independent of the implementation's helpers: the mappings' literal formulas of
SELECTION_SPEC section 3 worked by hand; average ranks from ``scipy.stats.percentileofscore`` and Phi
from ``scipy.stats.norm.cdf`` (``ref_probability``); Log-MPS against a per-candidate loop of
``prod_f p_f ** w_f`` over the spec's table typed into this file (a different evaluation order, so
1e-12 relative).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from scipy import stats

from market.entropy import EntropyNullCache
from selection.config import LOGMPS_COMPONENTS, SelectionConfig
from selection.pipeline.orchestrator import prepare
from selection.pipeline.ridge import training_rows
from selection.pipeline.scoring import log_mps, p_cdf, p_rank
from tests.selection.selection_pools import make_view


def test_p_rank_literals():
    # values 3, 1, 2, 2 -> average ranks 4, 1, 2.5, 2.5 -> p = .01 + .99 (q-1)/3
    np.testing.assert_allclose(p_rank(np.array([3.0, 1.0, 2.0, 2.0, np.nan])),
                               [1.0, 0.01, 0.505, 0.505, 0.01])
    np.testing.assert_allclose(p_rank(np.array([3.0, 1.0, np.nan]), descending=True), [0.01, 1.0, 0.01])
    np.testing.assert_allclose(p_rank(np.array([np.nan, 7.0])), [0.01, 1.0])  # n = 1 -> 1
    np.testing.assert_allclose(p_rank(np.array([np.nan, np.nan])), [0.01, 0.01])


def test_p_cdf_unit_interval_and_normal():
    np.testing.assert_allclose(p_cdf(np.array([0.0, 0.5, 1.0, np.nan])), [0.001, 0.5, 1.0, 0.01])
    x = np.array([-2.0, 0.0, 3.0, 10.0, np.nan])
    v = x[:4]
    z = (v - v.mean()) / (v.std(ddof=1) + 1e-9)
    np.testing.assert_allclose(p_cdf(x)[:4], np.clip(stats.norm.cdf(z), 0.001, 1), rtol=1e-12)
    assert p_cdf(x)[4] == 0.01
    np.testing.assert_allclose(p_cdf(np.array([5.0, np.nan])), [0.5, 0.01])  # one value: z = 0


#: SELECTION_SPEC section 3's table, typed in here (not read from selection.config): feature,
#: mapping and default weight, left column then right column
SPEC_TABLE = [("momentum", "rank", 1.7469), ("stability", "rank", 0.0458), ("liquidity", "cdf", 0.2946),
              ("antifragility", "rank", 0.6263), ("survival", "cdf", 1.4000), ("efficiency", "cdf", 1.5348),
              ("entropy", "rank_desc", 0.0322), ("cvar", "cdf", 1.0), ("hurst_clean", "rank", 0.3485),
              ("ADX", "cdf", 1.0), ("Recommend.All", "rank", 1.0), ("Recommend.MA", "rank", 1.0),
              ("ROC", "rank", 0.5), ("Volatility.D", "rank_desc", 0.5), ("skew", "rank", 0.5),
              ("kurtosis", "rank_desc", 0.5)]


def ref_probability(x: np.ndarray, mapping: str) -> np.ndarray:
    """The spec's mappings by another route: average ranks from ``scipy.stats.percentileofscore``
    (kind ``mean`` gives ``100 (q - 1/2) / n`` for the average rank q), value by value; Phi from
    ``scipy.stats.norm.cdf``; NaN -> 0.01."""
    out = np.full(x.shape, 0.01)
    ok = ~np.isnan(x)
    v = x[ok]
    n = v.size
    if n == 0:
        return out
    if mapping in ("rank", "rank_desc"):
        vv = v if mapping == "rank" else -v
        q = np.array([stats.percentileofscore(vv, t, kind="mean") * n / 100.0 + 0.5 for t in vv])
        out[ok] = 1.0 if n == 1 else 0.01 + 0.99 * (q - 1.0) / (n - 1.0)
    elif v.min() >= 0 and v.max() <= 1:
        out[ok] = np.clip(v, 0.001, 1.0)
    else:
        sd = np.std(v, ddof=1) if n > 1 else 0.0
        out[ok] = np.clip(stats.norm.cdf((v - np.mean(v)) / (sd + 1e-9)), 0.001, 1.0)
    return out


def test_mappings_against_scipy_percentiles_and_norm_cdf():
    rng = np.random.default_rng(5)
    x = np.round(rng.normal(size=40), 1)  # rounded: many ties, average ranks matter
    x[[3, 17]] = np.nan
    np.testing.assert_allclose(p_rank(x), ref_probability(x, "rank"), rtol=1e-12)
    np.testing.assert_allclose(p_rank(x, descending=True), ref_probability(x, "rank_desc"), rtol=1e-12)
    np.testing.assert_allclose(p_cdf(x), ref_probability(x, "cdf"), rtol=1e-12)
    u = rng.uniform(0, 1, 20)
    np.testing.assert_allclose(p_cdf(u), ref_probability(u, "cdf"), rtol=0)


def test_log_mps_against_a_product_loop_on_the_spec_table():
    """alpha_i = prod_f p_f(i) ** w_f with the spec's weights and independently computed p
    (a different evaluation order than exp-sum-log: 1e-12 relative)."""
    rng = np.random.default_rng(0)
    n = 25
    fs = pd.DataFrame({k: rng.normal(size=n) for k, _, _ in SPEC_TABLE})
    fs["survival"] = rng.uniform(0, 1, n)  # in [0, 1]: cdf clips instead of Phi
    fs.loc[3, "momentum"] = np.nan
    fs["ADX"] = np.round(fs["ADX"], 1)
    got = log_mps(fs, SelectionConfig().effective_weights())
    ref = np.ones(n)
    for k, m, w in SPEC_TABLE:
        p = ref_probability(fs[k].to_numpy(), m)
        for i in range(n):
            ref[i] *= p[i] ** w
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert ((got >= 0) & (got <= 1)).all()
    assert [(k, m, w) for k, (m, w) in LOGMPS_COMPONENTS.items()] == SPEC_TABLE


def test_higher_cvar_loss_lowers_conviction():
    fs = pd.DataFrame({k: np.zeros(3) for k in LOGMPS_COMPONENTS})
    fs["cvar"] = [-0.01, -0.05, -0.2]
    a = log_mps(fs, SelectionConfig().effective_weights())
    assert a[0] > a[1] > a[2]


def test_dominant_signal_weights():
    w = SelectionConfig(dominant_signal="efficiency").effective_weights()
    assert w["efficiency"] == 3.0 and w["momentum"] == 0.5
    w = SelectionConfig(dominant_signal="momentum").effective_weights()
    assert w["momentum"] == 3.0


def test_ridge_learns_a_planted_signal_from_the_train_slice_only():
    """Returns whose 20-bar forward mean is proportional to the trailing mean: momentum must get
    the largest positive coefficient."""
    rng = np.random.default_rng(1)
    t, k = 300, 200
    drift = rng.normal(0, 0.004, k)
    x = drift + rng.normal(0, 0.01, (t, k))
    cfg = SelectionConfig()
    z, y, used = training_rows(x, 365, cfg)
    assert used == 4 and z.shape == (4 * k, len(cfg.ridge.features))
    beta = np.linalg.solve(z.T @ z + len(y) * np.eye(z.shape[1]), z.T @ y)
    names = list(cfg.ridge.features)
    assert beta[names.index("momentum")] == beta.max() > 0


def test_ridge_sub_window_targets_end_at_the_cut_off():
    """T = 200 rows, cut-off row 199: sub-window 0 has features on rows [59, 179) and its target is
    the compounded return over rows [179, 199) (b + h <= cut-off); the next one's is [159, 179)."""
    rng = np.random.default_rng(2)
    x = rng.normal(0, 0.01, (200, 30))
    cfg = SelectionConfig()
    z, y, used = training_rows(x, 365, cfg)
    assert used == 4 and y.size == 4 * 30
    for j, (b0, b1) in enumerate(((179, 199), (159, 179))):
        fwd = np.prod(1.0 + x[b0:b1], axis=0) - 1.0
        np.testing.assert_array_equal(y[j * 30:(j + 1) * 30], p_rank(fwd) - 0.505)


def test_scores_in_context_tagged_by_role():
    ctx = prepare(make_view(seed=3, n_assets=30), SelectionConfig(), EntropyNullCache(n_series=300))
    io = ctx.inference_outputs
    assert io.roles == {"log_mps": "champion", "ridge": "challenger"}
    assert list(io.scores.columns) == ["log_mps", "ridge"]
    assert io.diagnostics["ridge"]["status"] == "fitted"
    np.testing.assert_array_equal(io.scores["log_mps"].to_numpy(),
                                  log_mps(ctx.feature_store, SelectionConfig().effective_weights()))


def _short_train_view():
    """Train slice of 60 bars (the full preset's shortest ``train_window``), 600 bars of history."""
    return make_view(seed=3, n_assets=30, n_bars=600, train=60)


def test_ridge_fits_on_its_own_history_with_a_60_bar_train_window():
    """Issue 15: on a 60-bar train slice a sub-window needs T - 21 >= 40 rows, so a fit on the train
    slice alone is unfitted (every score 0.505); the challenger reads its own 504 bars instead."""
    view = _short_train_view()
    ctx = prepare(view, SelectionConfig(), EntropyNullCache(n_series=300))
    diag = ctx.inference_outputs.diagnostics["ridge"]
    assert diag["status"] == "fitted" and diag["history_bars"] == 504 and diag["n_windows"] == 4
    assert len(ctx.returns) == 60  # features and the champion still read the train slice only
    assert np.unique(ctx.inference_outputs.scores["ridge"]).size > 1
    short = SelectionConfig(ridge={"history": 60})
    ctx60 = prepare(view, short, EntropyNullCache(n_series=300))
    assert ctx60.inference_outputs.diagnostics["ridge"]["status"] == "unfitted"
    np.testing.assert_array_equal(ctx60.inference_outputs.scores["ridge"].to_numpy(), 0.505)


def test_ridge_history_reads_bars_before_the_train_slice_but_not_the_champion():
    view = _short_train_view()
    closes = view.closes.copy()
    rng = np.random.default_rng(9)
    before = slice(view.window.train_start - 300, view.window.train_start - 1)  # keeps the first train return
    closes.iloc[before] = closes.iloc[before] * rng.uniform(0.8, 1.2, closes.iloc[before].shape)
    a = prepare(view, SelectionConfig(), EntropyNullCache(n_series=300)).inference_outputs.scores
    b = prepare(dataclasses.replace(view, closes=closes), SelectionConfig(),
                EntropyNullCache(n_series=300)).inference_outputs.scores
    np.testing.assert_array_equal(a["log_mps"].to_numpy(), b["log_mps"].to_numpy())
    assert not np.array_equal(a["ridge"].to_numpy(), b["ridge"].to_numpy())


def test_unfitted_challenger_selection_is_marked_degenerate():
    from selection.registry import FeatureCache, run_window

    cfg = SelectionConfig(ridge={"history": 60})
    res = run_window(_short_train_view(), ["v4", "v4:ridge", "raw"], cfg, seed=0,
                     cache=FeatureCache(null_cache=EntropyNullCache(n_series=300)))
    assert res["v4:ridge"].manifest["degenerate"] is True
    assert "unfitted" in res["v4:ridge"].manifest["degenerate_reason"]
    assert res["v4"].manifest["degenerate"] is False and res["raw"].manifest["degenerate"] is False
    ok = run_window(_short_train_view(), ["v4:ridge"], SelectionConfig(), seed=0,
                    cache=FeatureCache(null_cache=EntropyNullCache(n_series=300)))
    assert ok["v4:ridge"].manifest["degenerate"] is False
