"""Per-worker state on Dask (issue 16): the market travels once to each worker (in the run's plugin) and each worker builds one
``UnitContext`` per run, reused across the units it runs (it used to build one per unit, losing the
feature, covariance and compiled-problem caches every time); the units' decisions equal serial's."""
import contextlib
import json
import logging
import os
import socket
import sys
import threading

import psutil
import pytest

from contracts.enums import ExecutorKind
from tests.tournament.conftest import small_config
from tournament.executors import Session, execute
from tournament.market_io import load_market
from tournament.run import schedules
from tournament.records import EXECUTION_KEYS
from tournament.unit import UnitContext, UnitKey, run_unit


def _unit(out) -> dict:
    """A unit's JSON: from its result, or from the file bytes of an executor's ``UnitOutput``."""
    return json.loads(out.unit_bytes) if hasattr(out, "unit_bytes") else json.loads(json.dumps(out.to_json()))


def _decisions(res) -> dict:
    """A unit's decisions: its JSON without timings and cache statistics (execution, not decisions)."""
    d = _unit(res)
    d.pop("seconds")
    for a in d["allocations"].values():
        a["diagnostics"] = {k: v for k, v in a["diagnostics"].items() if k not in EXECUTION_KEYS}
    return d


def _cache_hits(results) -> int:
    return sum(a["diagnostics"].get("cache_hits", 0) for r in results for a in _unit(r)["allocations"].values())


@pytest.fixture(scope="module")
def units():
    cfg = small_config(max_windows=6)
    market = load_market(cfg.market)
    sched = schedules(cfg, len(market.closes.index))
    keys = [UnitKey(s, w) for s in cfg.settings() for w in sched[s.id]]
    assert len(keys) == 6
    return cfg, market, keys


def test_dask_executor_reuses_worker_caches(units):
    """Through ``execute``: the native backend's problem cache hits across the units a worker runs.
    A context built per unit (the old executor) hits only within a unit: exactly the hits of six
    fresh serial contexts (58 on this config), against 222 with one context per worker."""
    cfg, market, keys = units
    fresh = _cache_hits([run_unit(UnitContext(market=market, config=cfg), k) for k in keys])
    with contextlib.ExitStack() as stack:  # port 8787 busy (another cluster on the machine): no matter
        try:
            busy = stack.enter_context(socket.socket())
            busy.bind(("127.0.0.1", 8787))
            busy.listen()
        except OSError:
            pass  # already taken
        dask = list(execute(UnitContext(market=market, config=cfg), keys, ExecutorKind.DASK, workers=2))
    assert sorted(r.key.id for r in dask) == sorted(k.id for k in keys)
    assert _cache_hits(dask) > fresh


@pytest.fixture(scope="module")
def cluster_client():
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def test_one_context_per_worker_reused(cluster_client, units):
    from tournament.dask_units import PLUGIN_NAME, run_units

    cfg, market, keys = units
    ctx = UnitContext(market=market, config=cfg)
    stats: dict = {}
    got = {r.key.id: r for r in run_units(cluster_client, ctx, keys, stats=stats)}
    assert sorted(got) == sorted(k.id for k in keys)
    # every unit ran once, on some worker; no worker built more than one context for the run
    assert sum(s.get("units", 0) for s in stats.values()) == len(keys), stats
    assert all(s.get("contexts", 0) <= 1 for s in stats.values()), stats
    assert sum(s.get("contexts", 0) for s in stats.values()) <= 2
    # the plugin (and the contexts it holds) is gone after the run
    left = cluster_client.run(lambda dask_worker: [n for n in dask_worker.plugins if n.startswith(PLUGIN_NAME)])
    assert not any(left.values()), left
    serial = {r.key.id: r for r in execute(UnitContext(market=market, config=cfg), keys, ExecutorKind.SERIAL)}
    for k in keys:
        assert _decisions(got[k.id]) == _decisions(serial[k.id]), k.id


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the LocalCluster forks its workers on Linux only")
def test_local_cluster_workers_are_forked_and_close_cleanly(units):
    """The run's ``LocalCluster`` forks its workers from the driver (``executors.LOCAL_START_METHOD``):
    they hold the driver's modules before running anything (spawned workers re-imported the toolkit:
    the cluster took 24 s to start at load 11, 1.5 s forked), and they exit when the session closes
    (spawned workers outlived the nanny's 4 s close timeout every time and were killed: "Worker
    process still alive after 4.0 seconds, killing"). They have no memory limit, as the process pool's
    workers: Dask's pause and restart thresholds would count the driver's pages a forked worker shares."""
    import tabnanny  # noqa: F401  (a module only this driver imports: in a worker only if inherited)

    cfg, market, keys = units
    nanny_log = _Records()
    logging.getLogger("distributed.nanny").addHandler(nanny_log)
    try:
        with Session(UnitContext(market=market, config=cfg), ExecutorKind.DASK, workers=2) as s:
            client = s._dask()
            inherited = client.run(lambda: "tabnanny" in sys.modules)
            limits = client.run(lambda dask_worker: dask_worker.memory_manager.memory_limit)
            pids = set(client.run(os.getpid).values())
            # each worker is the driver's child and watches it (contracts.lifetime; the inherited
            # parent_alive_pipe ends alone made a killed driver's workers linger: test_worker_lifetime)
            parents = client.run(os.getppid)
            watching = client.run(lambda: any(t.name == "wfaudit-parent-watchdog" for t in threading.enumerate()))
            assert len(list(s.units(keys[:2]))) == 2
        assert set(parents.values()) == {os.getpid()}, parents
        assert list(watching.values()) == [True, True], watching
        assert list(inherited.values()) == [True, True], inherited
        # no memory limit, as the process pool: a forked worker's RSS counts the driver's shared pages
        assert list(limits.values()) == [None, None], limits
        assert not [m for m in nanny_log.messages if "still alive" in m], nanny_log.messages
        assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    finally:
        logging.getLogger("distributed.nanny").removeHandler(nanny_log)
