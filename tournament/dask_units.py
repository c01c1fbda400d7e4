"""Units on a Dask cluster with per-worker state (issue 16).

The market travels once to every worker inside the run's ``WorkerPlugin`` (``UnitsPlugin``), which
keeps one ``UnitContext`` per worker, built at the worker's first unit of the run and reused across
the units it runs, so that the per-process caches (features, covariance, the native backend's compiled
problems) live as long as they do in a process-pool worker. A unit task carries only its key: it has
no data dependency, so a worker that dies costs only the units it was running, which the scheduler
runs again elsewhere (a unit is a pure function of the market, the config and its key). Scattering
the market instead made it a dependency of every task: Dask's active memory manager keeps one replica
of scattered data, and when the worker holding it died every pending unit was cancelled ("already
forgotten") and the run failed (tests/tournament/test_real_cluster.py).

The plugin is registered per run under a name with a random token (two runs sharing a cluster never
share a context, nor remove each other's) and removed at the run's end (``teardown`` drops the
context). A worker that joins mid-run (a nanny's restart after a crash) receives the plugin on
arrival. ``setup`` pins BLAS/OpenMP/Rayon threads to 1, as the process executor's initializer does
(``tournament.executors.pin_threads``), on a ``LocalCluster`` and on a remote cluster alike.
"""
from __future__ import annotations

import contextlib
import uuid
from typing import Callable, Iterator

from distributed import WorkerPlugin, get_worker
from distributed import as_completed as dask_completed

from tournament.config import TournamentConfig
from tournament.unit import UnitContext, UnitKey, twin_groups
from tournament.unit_output import UnitOutput

PLUGIN_NAME = "wfaudit-units"


class UnitsPlugin(WorkerPlugin):
    """One run's market, config and verification sample, and its ``UnitContext`` on one worker (built
    at the run's first unit there and reused)."""

    def __init__(self, token: str, market=None, config: TournamentConfig | None = None,
                 verify_windows: frozenset = frozenset(), parent_pid: int | None = None) -> None:
        self.token = token
        #: the driver's PID when the run started this cluster itself (its workers are the driver's
        #: children): a worker then exits when the driver dies (``contracts.lifetime``)
        self.parent_pid = parent_pid
        self.name = plugin_name(token)
        self.market, self.config, self.verify_windows = market, config, verify_windows
        self.ctx: UnitContext | None = None
        #: contexts built and units run on this worker (tests, benchmarks)
        self.stats = {"contexts": 0, "units": 0}

    def setup(self, worker) -> None:
        import os

        from contracts.lifetime import die_with_parent
        from tournament.executors import freeze_inherited_heap, pin_threads

        pin_threads()
        freeze_inherited_heap()
        if self.parent_pid is not None and os.getppid() == self.parent_pid:
            die_with_parent(self.parent_pid, death_signal=False)

    def teardown(self, worker) -> None:
        self.ctx = None

    def context(self, unit: bool = True, n_units: int = 1) -> UnitContext:
        """This worker's context of the run (built once); ``unit`` counts ``n_units`` units in
        ``stats``, a post-unit task (``run_dask_task``) counts in ``stats["tasks"]``."""
        if self.ctx is None:
            self.ctx = UnitContext(market=self.market, config=self.config, verify_windows=self.verify_windows)
            self.stats["contexts"] += 1
        name, n = ("units", n_units) if unit else ("tasks", 1)
        self.stats[name] = self.stats.get(name, 0) + n
        return self.ctx


def plugin_name(token: str) -> str:
    """One plugin per run (two runs may share a cluster; each removes only its own at its end)."""
    return f"{PLUGIN_NAME}-{token}"


def run_token() -> str:
    """A fresh name for one run's plugin (it names, never decides: results do not depend on it)."""
    return uuid.uuid4().hex[:16]


def _plugin(token: str) -> UnitsPlugin:
    plugin = get_worker().plugins.get(plugin_name(token))
    if plugin is None:
        raise RuntimeError(f"worker {get_worker().address}: plugin {plugin_name(token)!r} is not registered "
                           "(tournament.dask_units.register registers it before submitting)")
    return plugin


def run_dask_unit(keys: list[UnitKey], token: str) -> list[UnitOutput]:
    """Twin units (one task, ``tournament.unit.twin_groups``) on a worker, with that worker's context
    of the run (``UnitsPlugin``)."""
    from tournament.executors import _run_pinned

    return _run_pinned(_plugin(token).context(n_units=len(keys)), keys)


def run_dask_task(fn: Callable, item, token: str):
    """One post-unit task ``fn(ctx, item)`` on a worker, with that worker's context of the run (its
    market: the task ships only ``item``; ``tournament.executors.Session.map``)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return fn(_plugin(token).context(unit=False), item)


def register(client, ctx: UnitContext, parent_pid: int | None = None) -> str:
    """Register one run's plugin (market, config, verification sample) on every worker, present and
    future; returns its token (``unregister`` removes it). ``parent_pid``: the driver's PID when the
    cluster is the run's own ``LocalCluster`` (its workers then exit when the driver dies)."""
    token = run_token()
    client.register_plugin(UnitsPlugin(token, ctx.market, ctx.config, ctx.verify_windows, parent_pid),
                           name=plugin_name(token))
    return token


def unregister(client, token: str) -> None:
    # a cluster that went away has no plugin left to remove: never mask the run's own error
    with contextlib.suppress(Exception):
        client.unregister_worker_plugin(plugin_name(token))


def map_tasks(client, fn: Callable, items: list, token: str) -> list:
    """``[fn(ctx, item) for item in items]`` on the cluster, in ``items``' order. A task carries only
    its function (by reference) and its item, never a scattered future: a worker that dies costs only
    the tasks it was running, which the scheduler runs again elsewhere."""
    futs = [client.submit(run_dask_task, fn, it, token, pure=False) for it in items]
    try:
        return client.gather(futs)
    finally:
        for f in futs:
            f.release()


def _stats(dask_worker, name: str) -> dict:
    plugin = dask_worker.plugins.get(name)
    return dict(plugin.stats) if plugin is not None else {}


def run_units(client, ctx: UnitContext, keys: list[UnitKey] | list[list[UnitKey]], stats: dict | None = None,
              token: str | None = None) -> Iterator[UnitOutput]:
    """Run ``keys`` on ``client``'s cluster and yield each result as it finishes. ``keys``: unit keys
    (grouped here by ``tournament.unit.twin_groups``) or such groups, one task each.

    ``token``: a plugin already registered (``register``; the caller removes it), else one is
    registered for these units and removed after them. ``stats``, when given, receives per worker
    address ``{"contexts": built, "units": run}`` before the plugin is removed."""
    own = token is None
    token = register(client, ctx) if own else token
    name = plugin_name(token)
    try:
        groups = keys if keys and isinstance(keys[0], list) else twin_groups(keys)
        done = dask_completed([client.submit(run_dask_unit, g, token, pure=False) for g in groups])
        for f in done:
            res = f.result()
            f.release()  # the driver has it: no worker keeps it (nor recomputes it if that worker dies)
            yield from res
        if stats is not None:
            stats.update(client.run(_stats, name=name))
    finally:
        if own:
            unregister(client, token)
