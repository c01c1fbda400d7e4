"""Volatility regimes of a run (issue 20): regimes.parquet equals a recomputation from returns.parquet
and regime_labels.parquet; the labels are the kernel's on the benchmark; both files are digested."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from audit.statistics import sharpe_ci
from market.regimes import regime_frame
from market.synthetic import SyntheticConfig, generate
from tournament.config import load_config
from tournament.unit import derive_seed


def test_regime_figures_equal_a_recomputation(small_run):
    d = small_run.run_dir
    cfg = load_config(d / "config.yaml")
    ret = pd.read_parquet(d / "returns.parquet")
    lab = pd.read_parquet(d / "regime_labels.parquet")
    fig = pd.read_parquet(d / "regimes.parquet")
    label_of = dict(zip(lab["date"], lab["regime"]))
    assert set(fig["cell_id"]) == set(ret["cell_id"]) and len(fig) == 3 * ret["cell_id"].nunique()
    n_checked = 0
    for row in fig.to_dict("records"):
        g = ret[ret["cell_id"] == row["cell_id"]].sort_values("date")
        keep = np.array([label_of.get(x) == row["regime"] for x in g["date"]], dtype=bool)
        r = g["return"].to_numpy()[keep]
        assert row["n_days"] == r.size
        if r.size < cfg.regimes.min_days:
            assert row["status"] == "too_few_days" and math.isnan(row["sharpe"])
            continue
        eq = np.r_[1.0, np.cumprod(1.0 + r)]
        mdd = min((eq / np.maximum.accumulate(eq) - 1.0).min(), 0.0)
        if np.all(r == r[0]):
            sharpe = 0.0
        else:
            sharpe = r.mean() / r.std(ddof=1) * math.sqrt(365)
        ci = sharpe_ci(r, 365, seed=derive_seed(cfg.seed, "regime_sharpe_ci", row["cell_id"], row["regime"]),
                       n_boot=cfg.statistics.n_boot, alpha=cfg.statistics.alpha)
        # 1e-12: the same formulas over the same float64 values; only summation order may differ
        assert row["sharpe"] == pytest.approx(sharpe, rel=1e-12, abs=1e-12)
        assert row["annual_volatility"] == pytest.approx(r.std(ddof=1) * math.sqrt(365), rel=1e-12, abs=1e-12)
        assert row["max_drawdown"] == pytest.approx(mdd, rel=1e-12, abs=1e-12)
        assert row["sharpe_ci_low"] == pytest.approx(ci.ci_low, rel=1e-12, abs=1e-12)
        assert row["sharpe_ci_high"] == pytest.approx(ci.ci_high, rel=1e-12, abs=1e-12)
        n_checked += 1
    assert n_checked >= len(fig) // 3  # the fixture's test span has days of several regimes


def test_labels_are_the_kernel_on_the_benchmark(small_run):
    d = small_run.run_dir
    cfg = load_config(d / "config.yaml")
    m = generate(SyntheticConfig(seed=cfg.market.synthetic_seed, n_bars=cfg.market.synthetic_bars,
                                 n_candidates=cfg.market.synthetic_candidates))
    want = regime_frame(m.data.closes[m.benchmark], window=cfg.regimes.window, quantiles=cfg.regimes.quantiles,
                        min_history=cfg.regimes.min_history, periods_per_year=365)
    lab = pd.read_parquet(d / "regime_labels.parquet")
    assert (lab["date"].to_numpy() == want.index.to_numpy()).all()
    pd.testing.assert_series_equal(lab["regime"], want["regime"].reset_index(drop=True), check_names=False)
    np.testing.assert_array_equal(lab["vol"].to_numpy(), want["vol"].to_numpy())


def test_regime_files_digested_and_summarised(small_run):
    d = small_run.run_dir
    recs = [json.loads(x) for x in (d / "audit.jsonl").read_text().splitlines()]
    digested = {r["data"]["path"] for r in recs if r["type"] == "artifact"}
    assert {"regime_labels.parquet", "regimes.parquet"} <= {p.split("/")[-1] for p in digested}
    b = json.loads((d / "bootstrap.json").read_text())["regimes"]
    assert b["reference"] == "benchmark BTCUSDT" and b["window"] == 20
    assert sum(v["test_days"] for v in b["regimes"].values()) + b["unlabelled_test_days"] == b["test_days"]
    assert b["ranking_consistency_sweeps"] == {}  # the fixture sweeps nothing
    regs = [r for r in ("calm", "turbulent", "crisis") if b["regimes"][r]["trial_cells_with_figures"]]
    pairs = [(x, y) for i, x in enumerate(regs) for y in regs[i + 1:]]  # regimes with figures only
    assert [(r["regime_a"], r["regime_b"]) for r in b["ranking_consistency_base_trials"]] == pairs


def test_regimes_config_is_validated():
    from contracts.errors import ConfigError

    cfg = load_config(preset="quick")
    assert (cfg.regimes.window, tuple(cfg.regimes.quantiles), cfg.regimes.min_history) == (20, (0.6, 0.9), 60)
    for bad in ({"quantiles": [0.9, 0.6]}, {"quantiles": [0.0, 0.5]}, {"window": 1}, {"colour": "red"}):
        with pytest.raises(ConfigError, match="regimes"):
            load_config(preset="quick", overrides={"regimes": bad})
