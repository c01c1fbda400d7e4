"""Raw return audit: the ledger alone rebuilds each cell's series and its metrics."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audit.ledger import LedgerWriter
from audit.metrics import compute_metrics
from audit.raw_audit import ledger_returns, recompute_from_ledger, simulation_record_data
from contracts.errors import ConfigError, DataError, LedgerError

DATES = pd.date_range("2024-01-01", periods=20, freq="D", tz="UTC")


def _write(tmp_path, clock, order=(0, 1), dup=False):
    rng = np.random.default_rng(11)
    full = {"cA": rng.normal(0.001, 0.02, 20), "cB": rng.normal(0.0, 0.01, 20)}
    with LedgerWriter(tmp_path, "raw", clock=clock) as w:
        w.append("run_start", "run", {"periods_per_year": 365})
        for k in order:  # windows may be written out of order (parallel executors)
            sl = slice(10 * k, 10 * k + 10 + (1 if dup and k == 0 else 0))
            w.append("simulation", "4.0-mlops",
                     simulation_record_data(k, DATES[sl], {c: r[sl] for c, r in full.items()}, 365,
                                            simulator="reference"))
        w.append("run_end", "run", {"artifacts": {}})
    return full


def test_recompute_matches_metrics_of_the_full_series(tmp_path, clock):
    full = _write(tmp_path, clock, order=(1, 0))
    out = recompute_from_ledger(tmp_path)
    assert set(out) == {"cA", "cB"}
    for cell, r in full.items():
        assert out[cell] == compute_metrics(r, 365)  # floats round-trip exactly through the ledger
    series, p = ledger_returns(tmp_path)
    assert p == 365.0 and series["cA"].index.equals(DATES)


def test_tampered_return_is_caught_before_recompute(tmp_path, clock):
    _write(tmp_path, clock)
    path = tmp_path / "audit.jsonl"
    lines = path.read_bytes().split(b"\n")
    i = lines[1].index(b'"returns":{"cA":[') + len(b'"returns":{"cA":[')
    lines[1] = lines[1][:i] + b"0.5," + lines[1][i:].split(b",", 1)[1]
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(LedgerError, match="seq 1"):
        recompute_from_ledger(tmp_path)


def test_overlapping_dates_raise(tmp_path, clock):
    _write(tmp_path, clock, dup=True)
    with pytest.raises(DataError, match="appears in two"):
        recompute_from_ledger(tmp_path)


def test_periods_per_year_must_agree(tmp_path, clock):
    _write(tmp_path, clock)
    with pytest.raises(ConfigError, match="contradicts"):
        recompute_from_ledger(tmp_path, periods_per_year=252)
    assert recompute_from_ledger(tmp_path, periods_per_year=365)


def test_record_builder_rejects_length_mismatch():
    with pytest.raises(DataError, match="cell x"):
        simulation_record_data(0, DATES[:3], {"x": [0.1, 0.2]}, 365)
