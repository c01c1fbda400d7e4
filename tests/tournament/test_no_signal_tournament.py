"""A tournament on the no-signal synthetic market (issue 14): no verdict significant beyond its calibrated
rate, and the summary says there is no evidence of skill. Slow: a quick-preset-sized run."""
import json

import pandas as pd
import pytest

from tournament.config import load_config


@pytest.mark.slow
def test_no_signal_market_gives_no_evidence_of_skill(tmp_path):
    from tournament.run import run_tournament

    cfg = load_config(preset="quick", overrides={
        "market": {"synthetic_no_signal": True},
        # no costs: turnover differences would be real (if small) differences between engines
        "costs": {"fees": 0.0, "slippage": 0.0},
        "backends": ["native"], "simulators": ["vectorbt"],
        "executor": "serial", "workers": 1,
    })
    out = run_tournament(cfg, tmp_path)
    d = out.run_dir
    m = pd.read_csv(d / "performance_matrix.csv")
    t = m[m["trial"]]
    best = t.sort_values("sharpe", ascending=False).iloc[0]
    assert best["dsr"] <= 0.95 and best["dsr_raw"] <= 0.95
    b = json.loads((d / "bootstrap.json").read_text())
    tests = b["paired_tests"]["tests"]
    rejected = sum(x["reject_holm"] for x in tests)
    # Holm keeps the family-wise rate at 5% (calibrated 0.06 at most): on one run, at most one
    # rejection among the pairs can be chance; more would be a size failure
    assert rejected <= 1, [(x["comparison"], x["profile"], x["pvalue"]) for x in tests if x["reject_holm"]]
    html = (d / "report" / "index.html").read_text()
    assert "not significant after deflating for" in html and "no evidence of skill" in html
