"""Partitioning: pairwise-complete correlations, distances, Ward clusters and the 25-cluster ceiling.

Reference: pandas ``DataFrame.corr(min_periods=20)`` computes the pairwise-complete Pearson
correlation (NaN below 20 common observations, which the spec maps to 0). Tolerance 1e-12: the
masked-product formula and pandas' per-pair loop round differently.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from selection.pipeline.partition import cluster_labels, distance_matrix, pairwise_corr, partition
from tests.selection.selection_pools import make_returns


def _with_gaps(seed=0, n=200, k=15):
    x = make_returns(seed, k, n, n_factors=3)
    x[:150, 0] = np.nan  # 50 obs
    x[:185, 1] = np.nan  # 15 obs (< 20 with everyone)
    x[100:, 2] = np.nan  # delisted: 100 obs, 0 common with column 1
    x[:, 3] = 0.01  # constant
    return x


@pytest.mark.parametrize("full", [False, True])
def test_pairwise_corr_matches_pandas(full):
    x = make_returns(1, 12, 120) if full else _with_gaps()
    c = pairwise_corr(x, 20)
    ref = pd.DataFrame(x).corr(min_periods=20).to_numpy()
    ref = np.where(np.isnan(ref), 0.0, ref)
    np.fill_diagonal(ref, 1.0)
    np.testing.assert_allclose(c, ref, rtol=1e-12, atol=1e-12)


def test_distance_is_ridge_shrunk_and_averaged_over_lookbacks():
    x = make_returns(2, 6, 300)
    s = 0.05
    d, _ = distance_matrix(x, (60, 120, 200), s, 20)
    ref = np.zeros((6, 6))
    for lb in (60, 120, 200):
        c = pd.DataFrame(x[-lb:]).corr().to_numpy()
        cs = (1 - s) * c + s * np.eye(6)
        ref += np.sqrt(np.clip(0.5 * (1 - cs), 0, None)) / 3
    np.fill_diagonal(ref, 0.0)
    np.testing.assert_allclose(d, ref, rtol=1e-12, atol=1e-12)


def test_lookback_longer_than_train_is_replaced_by_its_length():
    x = make_returns(3, 5, 90)
    d1, _ = distance_matrix(x, (60, 120, 200), 0.01, 20)
    d2, _ = distance_matrix(x, (60, 90, 90), 0.01, 20)
    np.testing.assert_array_equal(d1, d2)


def test_factor_structure_gives_its_clusters_without_fallback():
    x = make_returns(4, 40, 250, n_factors=4, vol=0.02)
    ids = [f"X{i:02d}" for i in range(40)]
    p = partition(pd.DataFrame(x, columns=ids), ids, (60, 120, 200), 0.01, 20, 0.7, 25)
    assert not p.used_maxclust
    groups = pd.Series(np.arange(40) % 4, index=ids)
    # every cluster lies inside one factor group
    assert (pd.DataFrame({"c": p.labels, "g": groups}).groupby("c")["g"].nunique() == 1).all()
    assert p.density is not None and p.density > 0.3


def test_maxclust_fallback_caps_at_25():
    x = make_returns(5, 80, 250, n_factors=80)  # every asset its own factor: uncorrelated
    ids = [f"X{i:02d}" for i in range(80)]
    p = partition(pd.DataFrame(x, columns=ids), ids, (60, 120, 200), 0.01, 20, 0.7, 25)
    assert p.used_maxclust and len(p.sizes) == 25
    z = linkage(squareform(distance_matrix(x, (60, 120, 200), 0.01, 20)[0], checks=False), "ward")
    assert fcluster(z, 0.7, "distance").max() > 25  # the plain cut would give more than 25


def test_labels_renumbered_in_id_order_and_small_pools():
    lab, z, used = cluster_labels(np.zeros((1, 1)), 0.7, 25)
    assert list(lab) == [0] and z is None and not used
    x = make_returns(6, 10, 200, n_factors=2)
    ids = [f"X{i:02d}" for i in range(10)]
    p = partition(pd.DataFrame(x, columns=ids), list(reversed(ids)), (60,), 0.01, 20, 0.7, 25)
    assert p.order == ids and p.labels.iloc[0] == 0
    firsts = pd.Series(p.labels.values).drop_duplicates().tolist()
    assert firsts == sorted(firsts)
    empty = partition(pd.DataFrame(x, columns=ids), [], (60,), 0.01, 20, 0.7, 25)
    assert empty.sizes == {} and empty.linkage is None and empty.density is None
