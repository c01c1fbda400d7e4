"""Cluster cap, atom cap, projection (water-filling) and market-neutral relaxation: hand-checked."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from allocation import AllocationConfig, allocate
from allocation.constraints import (RELAX_MARGIN, _level, cluster_caps, effective_cluster_cap,
                                    market_neutral_caps, project, water_fill)
from contracts.errors import SolverError
from contracts import AllocationRequest, Direction, Logic, StrategyAtom


def test_effective_cap_is_max_of_nominal_and_one_over_k() -> None:
    assert effective_cluster_cap(0.25, 8) == 0.25
    assert effective_cluster_cap(0.25, 3) == pytest.approx(1 / 3)
    assert effective_cluster_cap(0.25, 1) == 1.0


def test_projection_of_equal_weight_is_water_filling() -> None:
    # 7 atoms, clusters [0,0,0,1,2,3,4]: k = 5, cap 0.25. By hand: cluster 0 (3/7) is cut to 0.25
    # (1/12 per atom); the other four atoms share the remaining 0.75 equally: 3/16 each (< 0.25).
    caps = cluster_caps(list("abcdefg"), [0, 0, 0, 1, 2, 3, 4], 0.25, None)
    w = project(np.full(7, 1 / 7), caps)
    np.testing.assert_allclose(w, [1 / 12] * 3 + [3 / 16] * 4, atol=1e-12)


def test_projection_keeps_relative_weights_and_respects_atom_cap() -> None:
    caps = cluster_caps(list("abcde"), [0, 0, 1, 2, 3], 0.25, 0.2)
    # k = 4 -> cap 0.25; the atom cap 0.2 is infeasible (0.25 + 3 x 0.2 < 1) -> relaxed to 0.25.
    assert caps.relaxed["atom_cap"] == pytest.approx(0.25 + RELAX_MARGIN)
    w = project(np.array([0.5, 0.1, 0.2, 0.1, 0.1]), caps)
    # by hand: cluster 0 (a, b) is scaled to its cap keeping a:b = 5:1 -> 0.25*5/6, 0.25/6; the three
    # single-atom clusters then take 0.25 each (total 1).
    np.testing.assert_allclose(w, [0.25 * 5 / 6, 0.25 / 6, 0.25, 0.25, 0.25], atol=1e-9)


def test_atom_cap_relaxation_hand_case() -> None:
    # clusters [0,0,1], cap max(0.25, 1/2) = 0.5, atom cap 0.2: min(.5,.4)+min(.5,.2) = 0.6 < 1.
    # Smallest x with min(.5, 2x) + min(.5, x) >= 1 is x = 0.5.
    caps = cluster_caps(list("abc"), [0, 0, 1], 0.25, 0.2)
    assert caps.relaxed["atom_cap"] == pytest.approx(0.5, abs=1e-8)
    assert caps.b.tolist() == [0.5, 0.5]


def _forced_request() -> AllocationRequest:
    """3 atoms in 3 clusters: the cap max(0.25, 1/3) forces w = 1/3 each.

    Streams are exact multiples of the benchmark (+ a tiny independent wiggle that changes the betas
    by < 1e-3): betas 1.0, 0.5, -1.0 (the SHORT atom's stream is -r of a beta-1 asset).
    """
    rng = np.random.default_rng(7)
    t = 200
    idx = pd.date_range("2024-01-01", periods=t, tz="UTC")
    b = rng.normal(0, 0.01, t)
    atoms = [
        StrategyAtom(id="X_rating_LONG", symbol="X", identity="X", direction=Direction.LONG,
                     logic=Logic.RATING, cluster=0),
        StrategyAtom(id="Y_rating_LONG", symbol="Y", identity="Y", direction=Direction.LONG,
                     logic=Logic.RATING, cluster=1),
        StrategyAtom(id="Z_rating_SHORT", symbol="Z", identity="Z", direction=Direction.SHORT,
                     logic=Logic.RATING, cluster=2),
    ]
    streams = np.column_stack([b, 0.5 * b, -b]) + rng.normal(0, 1e-6, (t, 3))
    df = pd.DataFrame(streams, index=idx, columns=[a.id for a in atoms])
    assets = pd.DataFrame(streams * np.array([1, 1, -1]), index=idx, columns=["X", "Y", "Z"])
    return AllocationRequest(atoms=atoms, atom_returns=df, asset_returns=assets,
                             benchmark_returns=pd.Series(b, index=idx))


@pytest.mark.parametrize("backend", ["native", "riskfolio"])
def test_market_neutral_relaxation_hand_case(backend: str) -> None:
    # Forced w = (1/3, 1/3, 1/3): LONG share 2/3 > 0.6 -> share caps relaxed by 2/3 - 0.6;
    # beta_p = (1 + 0.5 - 1)/3 = 1/6 > 0.05 -> beta cap relaxed to the smallest feasible |beta|, 1/6.
    alloc = allocate(_forced_request(), "market_neutral", backend)
    assert alloc.status == "relaxed" and not alloc.fallback_used
    np.testing.assert_allclose(list(alloc.weights.values()), [1 / 3] * 3, atol=1e-7)
    assert alloc.relaxed["long_share_cap"] == pytest.approx(2 / 3, abs=1e-6)
    assert alloc.relaxed["beta_cap"] == pytest.approx(1 / 6, abs=1e-3)  # betas within 1e-3 of exact
    assert abs(alloc.diagnostics["beta_p"]) <= alloc.relaxed["beta_cap"] + 1e-6
    assert "beta_cap" in alloc.reason


def test_market_neutral_caps_all_long_relaxes_shares_to_one() -> None:
    caps = cluster_caps(list("abcd"), [0, 1, 2, 3], 0.25, None)
    out = market_neutral_caps(caps, np.array([1.0, 0.8, 1.2, 0.9]), np.ones(4), 0.05, 0.6, 0.6)
    # no SHORT atom: the LONG share must be 1 -> both caps raised by 0.4; the smallest |beta| with
    # w = 0.25 each (forced by the cap) is 0.975.
    assert out.relaxed["long_share_cap"] == pytest.approx(1.0, abs=1e-8)
    assert out.relaxed["beta_cap"] == pytest.approx(0.975, rel=1e-5)


@pytest.mark.parametrize("backend", ["native", "riskfolio"])
def test_market_neutral_constraints_hold_to_1e6(make_request, backend: str) -> None:
    
    req = make_request(n=12, shorts=5, seed=11, n_clusters=6)
    alloc = allocate(req, "market_neutral", backend)
    w = np.array(list(alloc.weights.values()))
    beta = np.array(list(alloc.diagnostics["betas"].values()))
    cfg = AllocationConfig()
    assert alloc.status == "optimal", alloc.reason
    assert abs(beta @ w) <= cfg.beta_cap + 1e-6
    signs = np.array([a.sign for a in req.atoms])
    assert w[signs > 0].sum() <= 0.6 + 1e-6 and w[signs < 0].sum() <= 0.6 + 1e-6


def test_projection_is_identity_when_no_cap_is_exceeded() -> None:
    # every scale of the water-filling is then >= 1 and lambda = 1: the weights come back as given
    caps = cluster_caps(list("abcde"), [0, 0, 1, 2, 3], 0.4, 0.3)
    w = np.array([0.2, 0.2, 0.3, 0.1, 0.2])  # cluster 0 exactly at its cap 0.4, atom c at 0.3
    assert np.array_equal(project(w, caps), w)
    # one atom over its cap: the water-filling runs and moves weight to the others
    x = project(np.array([0.1, 0.1, 0.5, 0.1, 0.2]), caps)
    assert x[2] == pytest.approx(0.3, abs=1e-12) and x.sum() == pytest.approx(1.0, abs=1e-12)


def test_level_is_exact_when_weights_span_many_orders_of_magnitude() -> None:
    """``_level``'s answer s must give ``sum_i min(ub_i, s w_i) = target``. Reference: that sum
    evaluated exactly (fractions) at the returned s. Weights log-uniform over 12 orders (a
    min-variance prior holds 1e-9 next to 0.5). The old running difference of the uncapped weight
    cancelled: a relative error of 3.9e-6 on these draws. Now the weight not yet capped is known to
    ``LEVEL_REL_ERR`` (1e-13) relative, the rest of the arithmetic adds a few eps: bound 2e-13."""
    from fractions import Fraction as F
    rng = np.random.default_rng(1)
    worst = 0.0
    for _ in range(500):
        n = int(rng.integers(2, 9))
        w = 10.0 ** rng.uniform(-12, 0, n)
        ub = rng.uniform(0.05, 0.5, n)
        target = float(rng.uniform(0.1, 1.0) * ub.sum())
        s = _level(w, ub, target)
        got = sum(min(F(u), F(s) * F(x)) for u, x in zip(ub, w))
        worst = max(worst, abs(float(got - F(target))) / target)
    assert worst <= 2e-13


def _tiny_weight_case() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The Barbell Core of tests/allocation/test_barbell.py's CI draw: 6 atoms, min-variance prior
    with 1.38e-9 next to 0.505 (cluster 0); clusters c0 {0, 1}, c1 {4, 5}, c3 {2}, c4 {3}, c2 empty;
    caps 0.25, atom caps 0.2. Capacity 0.25 + 0.25 + 0.2 + 0.2 = 0.9."""
    w = np.array([1.3765707003684529e-09, 5.0529072218972471e-01, 5.1854332096966813e-02,
                  1.4261348709731553e-01, 2.3497734626220285e-01, 6.5264110977219264e-02])
    member = np.array([[1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0],
                       [0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0]], dtype=bool)
    return w, member, np.full(5, 0.25), np.full(6, 0.2)


def test_water_fill_budget_at_exact_capacity_with_a_tiny_weight() -> None:
    # budget = capacity: every atom at its effective cap. By hand: atom 0 gets cluster 0's room
    # left by atom 1 (0.25 - 0.2); atoms 2, 3 their atom cap; cluster 1 its cap in the 4:5 ratio.
    w, member, b, ub = _tiny_weight_case()
    x = water_fill(w, member, b, ub, 0.9)
    c1 = 0.25 * w[4:] / w[4:].sum()
    np.testing.assert_allclose(x, [0.05, 0.2, 0.2, 0.2, c1[0], c1[1]], rtol=0, atol=1e-15)
    assert x.sum() == pytest.approx(0.9, abs=1e-15)
    assert np.all(member @ x <= b + 1e-15) and np.all(x <= ub)


def test_water_fill_short_budget_message_gives_the_real_capacity() -> None:
    # a budget 1e-9 above the capacity: the message must not round the capacity to the budget
    w, member, b, ub = _tiny_weight_case()
    with pytest.raises(SolverError, match=r"hold only 0\.(9|89999)\d* of a budget of 0\.900000001 "
                                          r"\(short by 1(\.0*)?e-09\)"):
        water_fill(w, member, b, ub, 0.9 + 1e-9)
