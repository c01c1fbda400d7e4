"""A small tournament shared by the end-to-end tests (synthetic market of 500 bars, 40 candidates)."""
import pytest

from tournament.config import load_config

SMALL = {
    "market": {"synthetic_bars": 520, "synthetic_candidates": 48},
    "engines": ["v4", "v3.4", "raw", "random"],
    "profiles": ["equal_weight", "min_variance", "hrp"],
    "backends": ["native", "riskfolio"],
    "simulators": ["vectorbt", "reference"],
    "base": {"step_size": 20, "train_window": 150, "feature_lookback": 60},
    "max_windows": 3,
    "executor": "serial",
    "workers": 1,
    "statistics": {"n_boot": 50, "pbo_blocks": 4},
    "report": False,
    "sleeves": [],  # the meta-portfolio has its own fixture (meta_run, tests/tournament/test_meta_run.py)
    "meta": None,
}


def small_config(**over):
    import copy
    cfg = copy.deepcopy(SMALL)
    cfg.update(over)
    return load_config(preset="quick", overrides=cfg)


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    from tournament.run import run_tournament

    out = run_tournament(small_config(), tmp_path_factory.mktemp("runs"))
    return out


def reload_small_run(small_run, dst):
    """A copy of the small run's folder at ``dst`` and what ``finish_run`` takes to redo its post-unit
    phase there: ``(cfg, market, sched, results)`` (the units reloaded from the copy's files)."""
    import json
    import shutil

    from tournament.market_io import load_market
    from tournament.run import schedules
    from tournament.unit import UnitResult

    shutil.copytree(small_run.run_dir, dst)
    cfg = small_config()
    market = load_market(cfg.market)
    sched = schedules(cfg, len(market.closes.index))
    results = {}
    for p in sorted((dst / "units").rglob("*.json")):
        res = UnitResult.from_json(json.loads(p.read_text()))
        results[res.key.id] = res
    return cfg, market, sched, results
