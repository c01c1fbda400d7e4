"""The simulation's files written batch by batch (issue 16, large preset peak memory).

``finish_run`` simulates in tasks cut by a memory budget (``post_tasks.sim_batches``: bars x columns,
not a fixed cell count) and writes ``positions.parquet`` and ``exposure.parquet`` part by part
(``rundir.write_parquet_parts``) instead of concatenating every cell's rows. The files must be the ones
the previous code wrote: one ``simulate`` call per simulator over every cell, the frames concatenated
and written by ``write_parquet`` (``DataFrame.to_parquet``), byte for byte.
"""

import numpy as np
import pandas as pd
import pytest

from simulation import SimulationConfig, simulate
from tests.tournament.conftest import reload_small_run
from tournament import post_tasks, rundir
from tournament.rundir import write_parquet, write_parquet_parts


def _frame(n: int, seed: int) -> pd.DataFrame:
    """A positions-like frame of ``n`` rows, checked against the schema (string, tz-aware dates, floats)."""
    from contracts.schemas import check_frame

    rng = np.random.default_rng(seed)
    cells = np.array([f"cell{i:02d}" for i in range(7)], dtype=object)
    return check_frame(pd.DataFrame({
        "cell_id": cells[rng.integers(0, 7, n)],
        "date": pd.to_datetime("2020-01-01", utc=True) + pd.to_timedelta(rng.integers(0, 900, n), unit="D"),
        "atom_id": [f"A{k}:LONG" for k in rng.integers(0, 500, n)],
        "symbol": [f"S{k}" for k in rng.integers(0, 300, n)],
        "units": rng.normal(size=n), "trade": rng.normal(size=n) * (rng.random(n) < 0.1),
        "cost": rng.random(n) * 1e-4}), "positions.parquet")


@pytest.mark.parametrize("sizes", [[0], [5], [0, 3, 0], [999, 1, 1000, 2500, 7, 0, 1493], [1000, 1000]])
def test_parts_write_the_same_bytes_as_the_whole_frame(tmp_path, monkeypatch, sizes):
    """Parts of uneven sizes (empty ones too) across row-group boundaries: the file is the one
    ``write_parquet`` writes for the concatenated frame (same bytes: schema, pandas metadata, row
    groups, pages, statistics). Row groups of 1,000 rows here (``ROW_GROUP_ROWS``; ``to_parquet`` is
    given the same size), so several groups are cut across parts."""
    monkeypatch.setattr(rundir, "ROW_GROUP_ROWS", 1000)
    frames = [_frame(n, i) for i, n in enumerate(sizes)]
    whole = pd.concat(frames, ignore_index=True)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    from contracts.schemas import check_frame

    check_frame(whole, "positions.parquet").to_parquet(tmp_path / "a" / "positions.parquet", index=False,
                                                       row_group_size=1000)
    write_parquet_parts(tmp_path / "b", "positions.parquet", (post_tasks.encode_frame(f) for f in frames))
    a, b = (tmp_path / "a" / "positions.parquet").read_bytes(), (tmp_path / "b" / "positions.parquet").read_bytes()
    assert a == b
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "b" / "positions.parquet"), whole, check_exact=True)


def test_parts_at_the_default_row_group_size_match_write_parquet(tmp_path):
    """At the default ``ROW_GROUP_ROWS`` (pyarrow's 1024 * 1024), parts below it give one row group,
    the bytes ``write_parquet`` gives (its ``to_parquet`` with no row-group size)."""
    frames = [_frame(n, 10 + i) for i, n in enumerate([3000, 0, 4000])]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_parquet(tmp_path / "a", "positions.parquet", pd.concat(frames, ignore_index=True))
    write_parquet_parts(tmp_path / "b", "positions.parquet", [post_tasks.encode_frame(f) for f in frames])
    assert (tmp_path / "a" / "positions.parquet").read_bytes() == (tmp_path / "b" / "positions.parquet").read_bytes()


def test_no_parts_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no parts"):
        write_parquet_parts(tmp_path, "positions.parquet", [])
    assert not list(tmp_path.iterdir())


def test_sim_batches_follow_the_budget(monkeypatch):
    """Batches are contiguous, cover every plan once, and stay within the budget of bars (the batch's
    span) x columns x ``SIM_BYTES_PER_VALUE`` (a plan above it alone); a wider market (more columns per
    cell) gives fewer cells per batch, a longer span too."""

    class P:  # what sim_batches reads of a plan: its span, and its columns (through sim_columns)
        def __init__(self, k, start=0, end=99):
            self.k, self.start_bar, self.end_bar = k, start, end

    monkeypatch.setattr(post_tasks, "sim_columns", lambda p: p.k)
    per = 100 * post_tasks.SIM_BYTES_PER_VALUE  # one column over 100 bars
    plans = [P(k) for k in (3, 10, 1, 50, 2, 2, 2, 7)]
    got = post_tasks.sim_batches(plans, budget=12 * per)
    assert [p for b in got for p in b] == plans
    assert [[p.k for p in b] for b in got] == [[3], [10, 1], [50], [2, 2, 2], [7]]
    assert len(post_tasks.sim_batches(plans, budget=60 * per)) < len(got)
    wider = [P(2 * p.k) for p in plans]
    assert len(post_tasks.sim_batches(wider, budget=12 * per)) > len(got)
    # spans: two cells of 1 column over bars 0-99 and 100-199 cost 200 bars x 2 columns together
    assert len(post_tasks.sim_batches([P(1, 0, 99), P(1, 100, 199)], budget=2 * per)) == 2
    assert len(post_tasks.sim_batches([P(1, 0, 99), P(1, 100, 199)], budget=4 * per)) == 1


def test_finish_run_files_equal_one_simulate_call_per_simulator(small_run, tmp_path, monkeypatch):
    """``finish_run`` with one simulation task per cell (a budget below any cell) writes returns,
    positions and exposure files byte-identical to the previous code's: one ``simulate`` call per
    simulator over every cell (the run's plans and order), concatenated, ``write_parquet``."""
    from contracts.enums import SimulatorKind
    from tournament.baselines import baseline_plans
    from tournament.postprocess import build_plans, finish_run

    dst = tmp_path / "run"
    cfg, market, sched, results = reload_small_run(small_run, dst)
    monkeypatch.setattr(post_tasks, "SIM_BATCH_BYTES", 1)  # every cell alone: the most parts
    calls = []
    orig = post_tasks.simulate_task
    monkeypatch.setattr(post_tasks, "simulate_task", lambda ctx, b: calls.append(len(b.plans)) or orig(ctx, b))
    finish_run(dst, cfg, market, sched, results, lambda *rec: None, lambda path: None)
    assert len(calls) > 20 and max(calls) == 1, calls  # one task per cell

    # the previous code: one call per simulator, frames concatenated, write_parquet
    plans = {**build_plans(cfg, sched, results), **baseline_plans(cfg, market, sched, results)[0]}
    sim_cfg = SimulationConfig(fees=cfg.costs.fees, slippage=cfg.costs.slippage,
                               liquidation_floor=cfg.liquidation_floor,
                               periods_per_year=market.calendar.periods_per_year, gap=cfg.gap)
    outs = [simulate(market.closes, [p for c, p in plans.values() if c.simulator == k], SimulatorKind(k), sim_cfg)
            for k in cfg.simulators]
    ref = tmp_path / "ref"
    ref.mkdir()
    for name in ("returns", "positions", "exposure"):
        frame = pd.concat([getattr(o, name) for o in outs], ignore_index=True)
        assert len(frame) > 0
        write_parquet(ref, f"{name}.parquet", frame)
        assert (dst / f"{name}.parquet").read_bytes() == (ref / f"{name}.parquet").read_bytes(), name
