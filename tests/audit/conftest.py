"""Shared fixtures of the audit tests: a fixed clock and a small finished run directory."""
from __future__ import annotations

import datetime as dt
import itertools

import pytest

from audit.ledger import LedgerWriter


class FixedClock:
    """Deterministic ``ts``: 2026-01-01T00:00:00Z plus one second per call."""

    def __init__(self) -> None:
        self._n = itertools.count()

    def __call__(self) -> dt.datetime:
        return dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=next(self._n))


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


def write_run(run_dir, clock, n_window_records: int = 5) -> list[dict]:
    """run_start, ``n_window_records`` window records (with floats), run_end; returns the records."""
    recs = []
    with LedgerWriter(run_dir / "audit.jsonl", "run-test", clock=clock) as w:
        recs.append(w.append("run_start", "run", {"config": {"seed": 7}, "periods_per_year": 365}))
        for k in range(n_window_records):
            recs.append(w.append("window", "4.0-mlops", {"window": k, "x": 0.1 * k + 1 / 3}))
        recs.append(w.append("run_end", "run", {"artifacts": {}}))
    return recs


@pytest.fixture
def run_dir(tmp_path, clock):
    d = tmp_path / "run"
    d.mkdir()
    write_run(d, clock)
    return d
