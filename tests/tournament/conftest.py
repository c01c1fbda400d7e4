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
