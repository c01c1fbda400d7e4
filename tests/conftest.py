"""Shared fixtures. Sets the numba cache dir before anything imports vectorbt."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("MPLCONFIGDIR", str(ROOT / ".cache" / "matplotlib"))
os.environ.setdefault("WFAUDIT_CACHE_DIR", str(ROOT / ".cache" / "wfaudit"))  # derived-field cache of runs
# MLflow 3 (the [mlflow] extra) writes an installation id under ~/.config and reports usage when imported
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def synthetic_market():
    """The default synthetic market (generated once per test session, ~8 s)."""
    from market.synthetic import generate

    return generate()
