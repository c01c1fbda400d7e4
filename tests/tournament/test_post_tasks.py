"""The post-unit phase on the run's executor (issue 16, "every phase distributed"): one
``executors.Session`` runs the units and then the post-unit tasks (``tournament.post_tasks``) on the
same workers; outputs do not depend on the executor, the worker count or the batch sizes."""
import json
import os
import shutil

import pandas as pd
import pytest

from contracts.enums import ExecutorKind
from tests.tournament.conftest import reload_small_run, small_config
from tournament import post_tasks
from tournament.executors import Session
from tournament.market_io import load_market
from tournament.post_tasks import where_task
from tournament.run import schedules
from tournament.unit import UnitContext, UnitResult


@pytest.fixture(scope="module")
def small_ctx():
    cfg = small_config()
    return UnitContext(market=load_market(cfg.market), config=cfg)


@pytest.mark.parametrize("kind", ["process", "dask"])
def test_session_map_runs_in_the_workers_in_order(small_ctx, kind):
    """``Session.map`` runs each task in a worker process (not the driver), with the worker's market,
    and returns the results in the items' order."""
    n_bars = len(small_ctx.market.closes.index)
    with Session(small_ctx, kind, workers=2) as s:
        got = s.map(where_task, list(range(12)))
    assert [it for _, _, it in got] == list(range(12))
    pids = {pid for pid, _, _ in got}
    assert os.getpid() not in pids, "a post-unit task ran in the driver"
    assert 1 <= len(pids) <= 2
    assert all(n == n_bars for _, n, _ in got)


def test_serial_session_map_runs_here(small_ctx):
    with Session(small_ctx, ExecutorKind.SERIAL) as s:
        got = s.map(where_task, ["a", "b"])
        assert s.n_tasks == 2
    assert got == [(os.getpid(), len(small_ctx.market.closes.index), "a"),
                   (os.getpid(), len(small_ctx.market.closes.index), "b")]


POST_FILES = ("returns.parquet", "positions.parquet", "exposure.parquet", "weights.parquet", "cells.parquet",
              "regimes.parquet", "regime_labels.parquet", "verification.parquet", "windows.parquet")


def _finish(small_run, dst, kind, workers, monkeypatch=None, small_batches=False):
    """``finish_run`` of the small run's units into a copy of its folder on a session of ``kind``; the
    post-unit files and the ledger records it appended, in order."""
    from tournament.postprocess import finish_run

    cfg, market, sched, results = reload_small_run(small_run, dst)
    appended = []
    with monkeypatch.context() as mp:
        if small_batches:  # batches are cut in the driver: many small tasks of every kind
            for name, size in (("SIM_BATCH_BYTES", 2**19), ("STATS_BATCH", 3), ("REGIME_BATCH", 4), ("PAIRS_BATCH", 2),
                               ("PBO_NULL_BATCH", 2)):
                mp.setattr(post_tasks, name, size)
        with Session(UnitContext(market=market, config=cfg), kind, workers=workers) as s:
            finish_run(dst, cfg, market, sched, results, lambda *rec: appended.append(rec), lambda path: None, s)
            n_tasks = s.n_tasks
    frames = {n: pd.read_parquet(dst / n) for n in POST_FILES}
    return {"frames": frames, "matrix": (dst / "performance_matrix.csv").read_bytes(),
            "bootstrap": json.loads((dst / "bootstrap.json").read_text()),
            "records": [(str(t), str(v), d) for t, v, d in appended], "n_tasks": n_tasks}


def test_post_unit_outputs_identical_across_executors_workers_and_batches(small_run, tmp_path, monkeypatch):
    """The post-unit outputs (every frame, the matrix, bootstrap.json and the ledger records appended,
    in order) are the same on serial (default batches) and on process(1), process(2) and dask(2) with
    small batches (many tasks of every kind: simulation, cell statistics, regimes, pairs, PBO null)."""
    ref = _finish(small_run, tmp_path / "serial", "serial", 1, monkeypatch)
    for kind, workers in (("process", 1), ("process", 2), ("dask", 2)):
        got = _finish(small_run, tmp_path / f"{kind}{workers}", kind, workers, monkeypatch, small_batches=True)
        assert got["n_tasks"] > ref["n_tasks"], (kind, workers)
        for name, frame in ref["frames"].items():
            pd.testing.assert_frame_equal(frame, got["frames"][name], check_exact=True, obj=f"{kind}{workers} {name}")
        assert got["matrix"] == ref["matrix"], (kind, workers)
        assert got["bootstrap"] == ref["bootstrap"], (kind, workers)
        assert got["records"] == ref["records"], (kind, workers)


def test_dask_map_survives_a_killed_worker(small_ctx):
    """A post-unit task carries only its function and item (no scattered data): SIGKILL of a worker
    while it runs tasks costs only those tasks, which run again elsewhere; the map completes, in
    order."""
    import signal
    import threading
    import time

    with Session(small_ctx, "dask", workers=2) as s:
        s.map(where_task, [0, 1])  # cluster and plugin up
        pids = sorted(set(s._client.run(os.getpid).values()))
        assert len(pids) == 2
        items = [{"sleep": 0.4, "i": i} for i in range(12)]
        killer = threading.Timer(1.0, os.kill, args=(pids[0], signal.SIGKILL))
        killer.start()
        t0 = time.perf_counter()
        got = s.map(where_task, items)
        killer.join()
    assert [it for _, _, it in got] == items
    assert time.perf_counter() - t0 > 1.0  # the kill happened while the map ran
    assert pids[0] not in {pid for pid, _, _ in got[-4:]}  # the last tasks ran after the kill, elsewhere


@pytest.mark.parametrize("kind", ["serial", "process", "dask"])
def test_session_submit_returns_at_once_and_gathers_what_map_gives(small_ctx, kind):
    """``Session.submit`` (issue 23) queues the tasks and returns before they finish (serial: they run
    at ``result()``); ``result()`` is ``map``'s list, in order, from the workers, and two submissions
    queue side by side."""
    import time

    with Session(small_ctx, kind, workers=2) as s:
        s.map(where_task, [0])  # pool or cluster up
        t0 = time.perf_counter()
        a = s.submit(where_task, [{"sleep": 0.3, "i": i} for i in range(4)])
        b = s.submit(where_task, ["x", "y"])
        queued = time.perf_counter() - t0
        got_b, got_a = b.result(), a.result()
        assert a.result() is got_a  # gathered once
    assert queued < 0.25, queued  # four 0.3 s tasks on two workers take >= 0.6 s
    assert [it for _, _, it in got_a] == [{"sleep": 0.3, "i": i} for i in range(4)]
    assert [it for _, _, it in got_b] == ["x", "y"]
    pids = {pid for pid, _, _ in got_a + got_b}
    assert (pids == {os.getpid()}) if kind == "serial" else (os.getpid() not in pids)


def test_statistics_are_queued_before_the_checks_run(small_run, tmp_path, monkeypatch):
    """Issue 23: the per-cell statistics, paired tests, PBO and its null, SPA and the MCS are queued on
    the workers before the driver writes the files and runs the audit checks (they overlap), not after
    the checks as a barrier of their own."""
    from tournament import postprocess

    seen = {}
    real_audit = postprocess.audit_run

    def audit_spy(*a, **kw):
        seen["tasks_at_audit"] = seen["session"].n_tasks
        return real_audit(*a, **kw)

    monkeypatch.setattr(postprocess, "audit_run", audit_spy)
    shutil.copytree(small_run.run_dir, tmp_path / "run")
    cfg = small_config()
    market = load_market(cfg.market)
    sched = schedules(cfg, len(market.closes.index))
    results = {}
    for p in sorted((tmp_path / "run" / "units").rglob("*.json")):
        res = UnitResult.from_json(json.loads(p.read_text()))
        results[res.key.id] = res
    with Session(UnitContext(market=market, config=cfg), "process", workers=2) as s:
        seen["session"] = s
        postprocess.finish_run(tmp_path / "run", cfg, market, sched, results, lambda *rec: None, lambda path: None, s)
        total = s.n_tasks
    # the audit's own two parts (directional, the ledger's returns) are the only tasks it submits
    assert seen["tasks_at_audit"] == total - 2, "statistics tasks were submitted after the audit checks"


@pytest.mark.parametrize("kind", ["process", "dask"])
def test_workers_freeze_what_they_inherit(kind):
    """``executors.freeze_inherited_heap``: a worker's collector skips what it held at its start
    (the objects are in the permanent generation, ``gc.get_freeze_count() > 0``)."""
    import gc

    cfg = small_config()
    with Session(UnitContext(market=load_market(cfg.market), config=cfg), kind, workers=1) as s:
        frozen = s.map(post_tasks.call_task, [post_tasks.Call(gc.get_freeze_count)])
    assert frozen[0] > 10_000


@pytest.mark.parametrize("kind", ["serial", "process"])
def test_workers_warm_the_simulators_while_the_plans_are_built(small_run, tmp_path, monkeypatch, kind):
    """Issue 23: ``finish_run`` queues one ``warm_simulation_task`` per worker before anything else
    (the workers idle while the driver builds the plans; the first simulation task then does not pay
    vectorbt's import and numba's cache loads); none on the serial executor (nothing to overlap)."""
    from tournament import postprocess

    assert post_tasks.warm_simulation_task(None, 0) == os.getpid()
    cfg, market, sched, results = reload_small_run(small_run, tmp_path / "run")
    submitted = []
    with Session(UnitContext(market=market, config=cfg), kind, workers=2) as s:
        real = s.submit

        def spy(fn, items):
            submitted.append((fn.__name__, len(items)))
            return real(fn, items)

        monkeypatch.setattr(s, "submit", spy)
        postprocess.finish_run(tmp_path / "run", cfg, market, sched, results, lambda *rec: None,
                               lambda path: None, s)
    warm = [x for x in submitted if x[0] == "warm_simulation_task"]
    if kind == "serial":
        assert warm == []
    else:
        assert submitted[0] == ("warm_simulation_task", 2) and len(warm) == 1
        assert submitted[1][0] == "simulate_task"
