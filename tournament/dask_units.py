"""Units on a Dask cluster with per-worker state (issue 16).

The market is scattered once (to every worker); each worker keeps one ``UnitContext`` per run and
reuses it across the units it runs, so that the per-process caches (features, covariance, the native
backend's compiled problems) live as long as they do in a process-pool worker. The context lives in a
``WorkerPlugin`` (``UnitsPlugin``) registered for the run and removed at its end (``teardown`` drops
it), named after the scattered market's key and the config's digest: two runs sharing a cluster never
share a context, nor remove each other's. ``setup`` pins BLAS/OpenMP/Rayon threads to 1, as the process executor's
initializer does (``tournament.executors.pin_threads``), on a ``LocalCluster`` and on a remote
cluster alike. A worker that joins mid-run (a nanny's restart after a crash) receives the plugin on
arrival; the scheduler re-runs the units of a worker that died (their results are the same: a unit
is a pure function of the market, the config and its key).
"""
from __future__ import annotations

import contextlib
import hashlib
from typing import Iterator

from distributed import WorkerPlugin, get_worker
from distributed import as_completed as dask_completed

from tournament.config import TournamentConfig, dump_config
from tournament.unit import UnitContext, UnitKey, UnitResult

PLUGIN_NAME = "wfaudit-units"


class UnitsPlugin(WorkerPlugin):
    """One run's ``UnitContext`` on one worker, built at the run's first unit there and reused."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.name = plugin_name(token)
        self.ctx: UnitContext | None = None
        #: contexts built and units run on this worker (tests, benchmarks)
        self.stats = {"contexts": 0, "units": 0}

    def setup(self, worker) -> None:
        from tournament.executors import pin_threads

        pin_threads()

    def teardown(self, worker) -> None:
        self.ctx = None

    def context(self, market, config: TournamentConfig, verify_windows: frozenset) -> UnitContext:
        if self.ctx is None:
            self.ctx = UnitContext(market=market, config=config, verify_windows=verify_windows)
            self.stats["contexts"] += 1
        self.stats["units"] += 1
        return self.ctx


def plugin_name(token: str) -> str:
    """One plugin per run (two runs may share a cluster; each removes only its own at its end)."""
    return f"{PLUGIN_NAME}-{token}"


def run_token(market_key: str, config: TournamentConfig, verify_windows: frozenset) -> str:
    """The key of a run's context on a worker: the scattered market, the config and the sample."""
    blob = "\n".join([str(market_key), dump_config(config), ",".join(map(str, sorted(verify_windows)))])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_dask_unit(market, config: TournamentConfig, key: UnitKey, verify_windows: frozenset, token: str) -> dict:
    """One unit on a worker, with that worker's context of the run (``UnitsPlugin``)."""
    from tournament.executors import _run_pinned

    plugin = get_worker().plugins.get(plugin_name(token))
    if plugin is None:
        raise RuntimeError(f"worker {get_worker().address}: plugin {plugin_name(token)!r} is not registered "
                           "(tournament.dask_units.run_units registers it before submitting)")
    return _run_pinned(plugin.context(market, config, verify_windows), key)


def _stats(dask_worker, name: str) -> dict:
    plugin = dask_worker.plugins.get(name)
    return dict(plugin.stats) if plugin is not None else {}


def run_units(client, ctx: UnitContext, keys: list[UnitKey], stats: dict | None = None) -> Iterator[UnitResult]:
    """Run ``keys`` on ``client``'s cluster and yield each result as it finishes.

    ``stats``, when given, receives per worker address ``{"contexts": built, "units": run}`` before
    the run's plugin is removed."""
    market_f = client.scatter(ctx.market, broadcast=True)
    token = run_token(market_f.key, ctx.config, ctx.verify_windows)
    name = plugin_name(token)
    client.register_plugin(UnitsPlugin(token), name=name)
    try:
        done = dask_completed([client.submit(run_dask_unit, market_f, ctx.config, k, ctx.verify_windows, token,
                                             pure=False) for k in keys])
        for f in done:
            res = f.result()
            f.release()  # the driver has it: no worker keeps it (nor recomputes it if that worker dies)
            yield UnitResult.from_json(res)
        if stats is not None:
            stats.update(client.run(_stats, name=name))
    finally:
        # a cluster that went away has no plugin left to remove: never mask the run's own error
        with contextlib.suppress(Exception):
            client.unregister_worker_plugin(name)
