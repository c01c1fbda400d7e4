"""Probability mappings, Log-MPS and the ridge challenger.

References: the mappings' literal formulas of SELECTION_SPEC section 3 worked by hand; Log-MPS
against a per-candidate loop of ``prod_f p_f ** w_f`` (a different evaluation order, so 1e-12
relative); scipy.stats.norm.cdf for Phi.
"""
from __future__ import annotations

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


def test_log_mps_against_product_loop():
    rng = np.random.default_rng(0)
    n = 25
    fs = pd.DataFrame({k: rng.normal(size=n) for k in LOGMPS_COMPONENTS})
    fs["survival"] = rng.uniform(0, 1, n)  # in [0, 1]: cdf clips instead of Phi
    fs.loc[3, "momentum"] = np.nan
    w = SelectionConfig().effective_weights()
    got = log_mps(fs, w)
    ref = np.ones(n)
    maps = {"rank": p_rank, "rank_desc": lambda v: p_rank(v, True), "cdf": p_cdf}
    for k, (m, _) in LOGMPS_COMPONENTS.items():
        p = maps[m](fs[k].to_numpy())
        for i in range(n):
            ref[i] *= p[i] ** w[k]
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert ((got >= 0) & (got <= 1)).all()


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
