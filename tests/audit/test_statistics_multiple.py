"""Hansen's SPA and the Model Confidence Set wrappers (arch.bootstrap)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from arch.bootstrap import MCS, SPA

from audit.statistics import model_confidence_set, spa_test
from contracts.errors import ConfigError, DataError

# n_boot 200 in these tests: the assertions are either identities with arch on the same draws
# or separations of t ~ 9 (p-values near 0 or near 1), which 200 replications resolve.


def _models(seed: int, means: list[float], t: int = 1000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = rng.normal(0.0, 0.01, (t, len(means))) + np.array(means)
    return pd.DataFrame(data, columns=[f"m{i}" for i in range(len(means))])


def test_spa_matches_arch_on_losses_with_same_seed() -> None:
    # Reference: arch's SPA on losses = -returns, same block length and seeded generator.
    m = _models(1, [0.0, 0.0005, -0.0005, 0.001])
    bench, models = m["m0"], m[["m1", "m2", "m3"]]
    res = spa_test(bench, models, seed=5, n_boot=200, block_length=3, studentize=False)
    ref = SPA(-bench.to_numpy(), -models.to_numpy(), block_size=3, reps=200,
              bootstrap="stationary", seed=np.random.default_rng(5))
    ref.compute()
    pd.testing.assert_series_equal(res.pvalues, ref.pvalues.astype(float))
    assert list(res.pvalues.index) == ["lower", "consistent", "upper"]
    assert res.block_length == 3 and not res.block_length_auto


def test_spa_detects_a_better_model_and_not_worse_ones() -> None:
    # m3 earns 0.003/day more than the benchmark (t ~ 0.003 / (0.014 / sqrt(1000)) ~ 7).
    m = _models(2, [0.0, -0.001, 0.0, 0.003])
    good = spa_test(m["m0"], m[["m1", "m2", "m3"]], seed=1, n_boot=200)
    assert good.pvalues["consistent"] < 0.05
    assert good.block_length_auto and good.block_length >= 1
    # every model 0.003/day worse than the benchmark: no evidence of superiority
    w = _models(3, [0.003, 0.0, 0.0, 0.0])
    bad = spa_test(w["m0"], w[["m1", "m2", "m3"]], seed=1, n_boot=200)
    assert bad.pvalues["consistent"] > 0.5
    assert (bad.pvalues >= 0).all() and (bad.pvalues <= 1).all()


def test_spa_zero_variance_models_are_listed_and_finite() -> None:
    m = _models(4, [0.0, 0.0, 0.0])
    models = m[["m1", "m2"]].assign(copy=m["m0"], flat=0.0)
    res = spa_test(m["m0"], models, seed=2, n_boot=200)
    assert res.degenerate_models == ["copy"]  # differential benchmark - copy is constant 0
    assert np.isfinite(res.pvalues.to_numpy()).all()
    bench_flat = spa_test(np.zeros(1000), m, seed=2, n_boot=200)  # cash-like benchmark
    assert np.isfinite(bench_flat.pvalues.to_numpy()).all()


def test_spa_same_seed_same_result_and_bad_input() -> None:
    m = _models(5, [0.0, 0.0005, 0.0])
    a = spa_test(m["m0"], m[["m1", "m2"]], seed=3, n_boot=100)
    b = spa_test(m["m0"], m[["m1", "m2"]], seed=3, n_boot=100)
    assert a.to_dict() == b.to_dict()
    with pytest.raises(DataError, match="dates"):
        spa_test(m["m0"].iloc[:-1], m[["m1", "m2"]], seed=3)
    with pytest.raises(ConfigError, match="seed"):
        spa_test(m["m0"], m[["m1", "m2"]], seed=None)  # type: ignore[arg-type]


def test_mcs_matches_arch_with_same_seed() -> None:
    m = _models(6, [0.001, 0.0, -0.001, 0.0005])
    res = model_confidence_set(m, seed=7, n_boot=200, block_length=2, size=0.1, loss="return")
    ref = MCS(-m.to_numpy(), size=0.1, reps=200, block_size=2, method="max",
              bootstrap="stationary", seed=np.random.default_rng(7))
    ref.compute()
    ref_p = ref.pvalues["Pvalue"]
    np.testing.assert_array_equal(res.pvalues.to_numpy(), [ref_p.loc[i] for i in range(4)])
    assert res.included == [f"m{i}" for i in ref.included]
    assert res.method == "max" and res.status == "ok"


def test_mcs_separates_good_from_bad_and_liquidated() -> None:
    # three models at +0.002/day, two at -0.002/day and a liquidated (constant 0) one:
    # the gap of 0.002-0.004/day is t ~ 5-9 over 1000 days.
    m = _models(7, [0.002, 0.002, 0.002, -0.002, -0.002])
    m["flat"] = 0.0
    res = model_confidence_set(m, seed=1, n_boot=200)
    assert set(res.included) == {"m0", "m1", "m2"}
    assert set(res.excluded) == {"m3", "m4", "flat"}
    assert res.status == "ok" and res.warning == ""


def test_mcs_duplicates_share_their_representative_verdict() -> None:
    # Identical models make arch divide by a zero deviation (its RuntimeWarning would be an
    # error here); the rule runs the MCS on one representative per group.
    m = _models(8, [0.002, 0.002, -0.002])
    m["copy_good"] = m["m0"]
    m["copy_bad"] = m["m2"]
    raw = MCS(-m.to_numpy(), size=0.1, reps=200, block_size=2, method="max",
              seed=np.random.default_rng(1))
    with pytest.raises(RuntimeWarning, match="standard deviation"):
        raw.compute()  # arch itself, without the rule (warnings are errors in our tests)
    res = model_confidence_set(m, seed=1, n_boot=200)
    assert res.duplicate_of == {"copy_good": "m0", "copy_bad": "m2"}
    assert res.pvalues["copy_good"] == res.pvalues["m0"]
    assert res.pvalues["copy_bad"] == res.pvalues["m2"]
    assert "copy_good" in res.included and "copy_bad" in res.excluded
    assert res.status == "ok"


def test_mcs_zero_deviation_without_duplicates_gives_no_verdict() -> None:
    # Two distinct constant models (0 and 0.25 per period: both exactly representable, so their
    # loss errors are exactly 0) and a very bad noisy one. Step 1 eliminates "real" (its
    # standardised excess loss is the largest when its mean return < -0.0625); the two
    # constants are then left with a zero deviation. arch 8 warns and, the statistic being
    # NaN, its elimination loop never ends (seen: a hung test run); the rule stops it and
    # returns "no verdict" (all included, p-value 1, status and message recorded).
    rng = np.random.default_rng(0)
    m = pd.DataFrame({"real": rng.normal(-0.2, 0.01, 500), "zero": np.zeros(500),
                      "quarter": np.full(500, 0.25)})
    res = model_confidence_set(m, seed=1, n_boot=50)
    assert res.status == "degenerate_step" and "standard deviation" in res.warning
    assert res.included == ["real", "zero", "quarter"] and (res.pvalues == 1.0).all()


def test_mcs_all_identical_is_degenerate() -> None:
    m = pd.DataFrame({"a": np.zeros(50), "b": np.zeros(50), "c": np.zeros(50)})
    res = model_confidence_set(m, seed=1, n_boot=50)
    assert res.status == "degenerate"
    assert res.included == ["a", "b", "c"] and (res.pvalues == 1.0).all()


def test_mcs_method_r_and_reproducible() -> None:
    m = _models(9, [0.002, -0.002, 0.0])
    a = model_confidence_set(m, seed=4, n_boot=100, method="R")
    b = model_confidence_set(m, seed=4, n_boot=100, method="R")
    assert a.to_dict() == b.to_dict() and "m1" in a.excluded
    with pytest.raises(ConfigError, match="method"):
        model_confidence_set(m, seed=4, method="SQ")


def test_mcs_bad_input() -> None:
    m = _models(10, [0.0, 0.0])
    m.columns = ["x", "x"]
    with pytest.raises(DataError, match="duplicate"):
        model_confidence_set(m, seed=1)
    with pytest.raises(DataError, match="columns"):
        model_confidence_set(np.zeros((30, 1)), seed=1)


def test_spa_studentized_one_model_equals_arch() -> None:
    # With one model, dividing by its omega is monotone: the studentised p-values must equal
    # arch's (same draws), an identity check of our statistic, recentring and draws.
    m = _models(3, [0.0, 0.0004])
    res = spa_test(m["m0"], m[["m1"]], seed=9, n_boot=300, block_length=4)
    ref = SPA(-m["m0"].to_numpy(), -m[["m1"]].to_numpy(), block_size=4, reps=300,
              bootstrap="stationary", seed=np.random.default_rng(9))
    ref.compute()
    np.testing.assert_allclose(res.pvalues.to_numpy(), ref.pvalues.to_numpy(dtype=float),
                               atol=1e-12)
    assert res.studentized


def test_spa_studentized_is_not_drowned_by_a_volatile_model() -> None:
    # Finding: unstudentised SPA takes max_k dbar_k, so a zero-mean model 8x as volatile as the
    # rest dominates the bootstrap maximum and hides a steady winner (t ~ 6 on 1000 days).
    rng = np.random.default_rng(12)
    t = 1000
    bench = rng.normal(0.0, 0.01, t)
    steady = bench + 0.0015 + rng.normal(0.0, 0.008, t)
    wild = rng.normal(0.0, 0.08, t)
    models = pd.DataFrame({"steady": steady, "wild": wild})
    raw = spa_test(bench, models, seed=2, n_boot=300, studentize=False)
    stud = spa_test(bench, models, seed=2, n_boot=300)
    assert stud.pvalues["consistent"] < 0.01
    assert raw.pvalues["consistent"] > 0.05


def test_mcs_sharpe_loss_matches_arch_on_normalised_losses() -> None:
    m = _models(6, [0.001, 0.0, -0.001, 0.0005])
    res = model_confidence_set(m, seed=7, n_boot=200, block_length=2, size=0.1)
    x = m.to_numpy()
    ref = MCS(-x / x.std(axis=0, ddof=1), size=0.1, reps=200, block_size=2, method="max",
              bootstrap="stationary", seed=np.random.default_rng(7))
    ref.compute()
    ref_p = ref.pvalues["Pvalue"]
    np.testing.assert_array_equal(res.pvalues.to_numpy(), [ref_p.loc[i] for i in range(4)])
    assert res.loss == "sharpe" and res.to_dict()["loss"] == "sharpe"


def test_mcs_sharpe_loss_does_not_favour_the_volatile_model() -> None:
    # Finding: on raw returns the MCS keeps the most volatile model (highest mean return) and
    # drops a steadier one with twice its Sharpe; on the normalised loss the steady one stays.
    rng = np.random.default_rng(4)
    t = 1500
    f = rng.normal(0, 0.01, t)
    steady = 0.4 * f + rng.normal(0, 0.004, t) + 0.0006  # Sharpe ~ 0.11 per day
    wild = 4.0 * f + rng.normal(0, 0.02, t) + 0.002      # Sharpe ~ 0.044 per day, mean x3
    m = pd.DataFrame({"steady": steady, "wild": wild})
    by_return = model_confidence_set(m, seed=1, n_boot=300, loss="return")
    assert "steady" in by_return.excluded and "wild" in by_return.included  # the finding
    by_sharpe = model_confidence_set(m, seed=1, n_boot=300)
    assert "steady" in by_sharpe.included
    assert by_sharpe.pvalues["steady"] >= by_sharpe.pvalues["wild"]
