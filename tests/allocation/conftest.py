"""Builders of synthetic allocation requests (seeded) shared by the allocation tests.

The suite runs with ``--import-mode=importlib``, so helpers reach the tests as fixtures: the
``make_request`` fixture (session scope, it is a pure function) returns the builder itself.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from contracts import AllocationRequest, Direction, Logic, StrategyAtom


def build_request(n: int = 8, t: int = 300, seed: int = 0, n_clusters: int | None = None,
                 shorts: int | None = None, shrinkage: float = 0.05, drift: float = 3e-4,
                 periods_per_year: int = 365) -> AllocationRequest:
    """n atoms on n distinct assets driven by 3 factors plus noise (daily simple returns).

    Atom i is on asset ``S{i}``; the first ``shorts`` atoms (default n // 3) are SHORT (stream = -r);
    cluster = i % n_clusters (default n); conviction {'champion': c_i, 'challenger': ...}.
    The benchmark is the first factor's return series.
    """
    rng = np.random.default_rng(seed)
    k = 3
    f = rng.normal(0.0, 0.01, size=(t, k))
    load = rng.normal(1.0, 0.5, size=(k, n)) * np.array([[1.0], [0.5], [0.3]])
    r = drift + f @ load + rng.normal(0.0, 0.015, size=(t, n)) * rng.uniform(0.5, 2.0, size=n)
    idx = pd.date_range("2024-01-01", periods=t, freq="D", tz="UTC")
    shorts = n // 3 if shorts is None else shorts
    n_clusters = n if n_clusters is None else n_clusters
    atoms, cols = [], {}
    for i in range(n):
        d = Direction.SHORT if i < shorts else Direction.LONG
        a = StrategyAtom(id=f"A{i}_mom_{d.value}", symbol=f"S{i}", identity=f"A{i}", direction=d,
                         logic=Logic.MOM, cluster=i % n_clusters,
                         conviction={"champion": float(rng.normal()), "challenger": 0.0})
        atoms.append(a)
        cols[a.id] = d.sign * r[:, i]
    assets = pd.DataFrame(r, index=idx, columns=[f"S{i}" for i in range(n)])
    return AllocationRequest(atoms=atoms, atom_returns=pd.DataFrame(cols, index=idx),
                             asset_returns=assets, benchmark_returns=pd.Series(f[:, 0], index=idx),
                             shrinkage=shrinkage, periods_per_year=periods_per_year)


@pytest.fixture(scope="session")
def make_request():
    """The seeded request builder ``build_request`` (see its docstring)."""
    return build_request
