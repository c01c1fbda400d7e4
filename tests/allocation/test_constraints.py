"""Cluster cap, atom cap, projection (water-filling) and market-neutral relaxation: hand-checked."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from allocation import AllocationConfig, allocate
from allocation.constraints import (RELAX_MARGIN, cluster_caps, effective_cluster_cap,
                                    market_neutral_caps, project)
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
