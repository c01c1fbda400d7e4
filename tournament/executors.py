"""Executors: where units and post-unit tasks run (serial, a local process pool, or Dask). Never
confuse with backends.

A run opens one ``Session`` (``tournament.run``) for the units and the post-unit phase: the same
process pool or Dask client runs the units (``Session.units``: results yielded as units finish; the
ledger order may differ across executors, the decisions may not) and then the post-unit tasks
(``Session.map``: ordered, batched by ``tournament.post_tasks``). Solver and BLAS threads are pinned
to 1 in every executor, serial included. Process-pool workers exit when their driver dies, even by
SIGKILL (``contracts.lifetime``); on Dask the market travels once to each worker in the run's plugin,
which keeps one ``UnitContext`` per worker (``tournament.dask_units``). ``execute`` (units only, a
session of its own) is kept for callers that run units alone.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable, Iterator

from contracts.enums import ExecutorKind
from contracts.errors import ConfigError
from contracts.lifetime import die_with_parent
from tournament.unit import UnitContext, UnitKey, dispatch_order, run_units, twin_groups
from tournament.unit_output import UnitOutput, unit_output

#: how the ``LocalCluster``'s worker processes start. "fork" on Linux: the workers inherit the
#: driver's imported modules (the toolkit, vectorbt, numba's compiled functions) and the market, as
#: the process pool's workers do; "spawn" (distributed's default) re-imports everything in each
#: worker and re-runs the main module. Measured on 2 cores (benchmarks, issue 16): the cluster started
#: in 1.5 s instead of 24 s and closed in 0.2 s instead of 4.1 s (spawned workers outlived the
#: nanny's 4 s close timeout and were killed). Only the cluster's start forks: the driver's main
#: thread then waits in ``LocalCluster.__init__`` (holds no lock a child could need); a worker the
#: nanny restarts mid-run is spawned (distributed's default).
LOCAL_START_METHOD = "fork" if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods() \
    else "spawn"

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                "RAYON_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def pin_threads() -> None:
    """Pin BLAS/OpenMP/Rayon (Clarabel) threads to 1 in this process."""
    for v in _THREAD_VARS:
        os.environ[v] = "1"
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)


def _run_pinned(ctx: UnitContext, keys: list[UnitKey]) -> list[UnitOutput]:
    """Twin units (``tournament.unit.twin_groups``: one task), each encoded where it ran
    (``tournament.unit_output``: file bytes, records, slim result)."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):
        return [unit_output(r, ctx.market.closes.index) for r in run_units(ctx, keys)]


# Process-pool workers keep their context here: set once by the initializer in each worker process
# (process-local, never shared or mutated after start).
_WORKER_CTX: dict[str, UnitContext] = {}


def _init_worker(market, config, verify_windows=frozenset(), parent_pid: int | None = None) -> None:
    if parent_pid is not None:  # exit when the driver dies, even by SIGKILL (contracts.lifetime)
        die_with_parent(parent_pid)
    pin_threads()
    _WORKER_CTX["ctx"] = UnitContext(market=market, config=config, verify_windows=verify_windows)
    freeze_inherited_heap()


def freeze_inherited_heap() -> None:
    """``gc.freeze()`` in a worker: what it holds at its start (the modules, the market and whatever
    the driver held when the worker was forked) moves to the collector's permanent generation, so the
    cyclic collections the units trigger scan only what the units allocate (a serial sample of 41
    full-preset units: 13.27 -> 12.84 CPU-s; a forked worker inherits more). Nothing is freed or
    changed: those objects live as long as the worker anyway."""
    import gc

    gc.freeze()


def _run_in_worker(keys: list[UnitKey]) -> list[UnitOutput]:
    return _run_pinned(_WORKER_CTX["ctx"], keys)


def _run_task(fn: Callable, item):
    """One post-unit task in a process-pool worker, with the worker's context (its market)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return fn(_WORKER_CTX["ctx"], item)


class Session:
    """One executor for a whole run: the units (``units``) and the post-unit tasks (``map``) run on
    the same workers, opened once (``with Session(...) as s``) and closed at the run's end.

    - serial: everything in this process, with ``ctx``;
    - process: one ``ProcessPoolExecutor`` whose workers hold the market (``_init_worker``) and exit
      when the driver dies;
    - dask: one ``Client`` (a ``LocalCluster`` of ``workers`` processes, or ``scheduler``'s cluster)
      and the run's ``UnitsPlugin`` (``tournament.dask_units``), which gives units and tasks the
      market on the worker; no task depends on scattered data (a killed worker cancels nothing).

    ``map(fn, items)`` runs ``fn(ctx, item)`` for each item, ``ctx`` being the worker's
    ``UnitContext`` of the run (``ctx.market``, ``ctx.config``), and returns the results in
    ``items``' order. ``fn`` must be a pure module-level function (pickled by reference) and each item
    picklable; a task's result must not depend on where it ran, so outputs are identical on every
    executor and worker count. The pool starts at the first call that needs it.
    """

    def __init__(self, ctx: UnitContext, kind: ExecutorKind | str, workers: int = 1, scheduler: str | None = None):
        self.ctx, self.kind = ctx, ExecutorKind(kind)
        self.workers, self.scheduler = workers, scheduler
        self._pool: ProcessPoolExecutor | None = None
        self._client = self._cluster = self._token = None
        #: tasks run through ``map`` (tests, benchmarks)
        self.n_tasks = 0

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _process_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            c = self.ctx
            self._pool = ProcessPoolExecutor(max_workers=self.workers, initializer=_init_worker,
                                             initargs=(c.market, c.config, c.verify_windows, os.getpid()))
        return self._pool

    def _dask(self):
        if self._client is None:
            from dask.distributed import Client, LocalCluster

            from tournament.dask_units import register

            if self.scheduler:
                self._client = Client(self.scheduler)
            else:
                import dask

                # no dashboard; the scheduler's HTTP routes (health, metrics) on a free loopback port, not
                # the default 8787 on every interface (busy whenever another cluster runs on the machine);
                # workers forked from this process (LOCAL_START_METHOD), with no memory limit, as the
                # process pool's: a forked worker's RSS counts the driver's pages it shares, so Dask's
                # thresholds (pause at 80% of total/workers, restart at 95%) would measure the driver;
                # no task keeps data on a worker to spill (results are released once read)
                # (Python >= 3.12 warns at any fork of a multi-threaded process; the fork here is
                # deliberate, see LOCAL_START_METHOD)
                with dask.config.set({"distributed.worker.multiprocessing-method": LOCAL_START_METHOD}), \
                        warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=r".*multi-threaded, use of fork\(\)",
                                            category=DeprecationWarning)
                    self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                                 memory_limit=0, dashboard_address=None,
                                                 scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                                                 env={v: "1" for v in _THREAD_VARS})
                self._client = Client(self._cluster)
            # one UnitContext per worker, reused; the run's own LocalCluster's workers die with the driver
            self._token = register(self._client, self.ctx, None if self.scheduler else os.getpid())
        return self._client

    def units(self, keys: list[UnitKey]) -> Iterator[UnitOutput]:
        """Run ``keys`` and yield each unit's ``UnitOutput`` (``tournament.unit_output``: its files'
        bytes, records and slim result, encoded where it ran) as it finishes (order may differ by
        executor). Twin units (``tournament.unit.twin_groups``) run as one task, so that they share
        their decisions wherever they run."""
        if not keys:
            return
        groups = dispatch_order(twin_groups(keys), self.ctx)  # the units that verify first
        if self.kind is ExecutorKind.SERIAL:
            for g in groups:
                yield from _run_pinned(self.ctx, g)
        elif self.kind is ExecutorKind.PROCESS:
            pool = self._process_pool()
            # no list of the futures: as_completed drops each one it yields, so a unit's output is
            # freed once the driver has persisted it
            for f in as_completed([pool.submit(_run_in_worker, g) for g in groups]):
                yield from f.result()
        elif self.kind is ExecutorKind.DASK:
            from tournament.dask_units import run_units

            client = self._dask()
            yield from run_units(client, self.ctx, groups, token=self._token)
        else:  # pragma: no cover - enum is exhaustive
            raise ConfigError(f"unknown executor {self.kind}")

    def map(self, fn: Callable, items: list) -> list:
        """``[fn(ctx, item) for item in items]`` on this session's workers, in order (see the class)."""
        items = list(items)
        self.n_tasks += len(items)
        if not items:
            return []
        if self.kind is ExecutorKind.SERIAL:
            return [fn(self.ctx, it) for it in items]
        if self.kind is ExecutorKind.PROCESS:
            futs = [self._process_pool().submit(_run_task, fn, it) for it in items]
            return [f.result() for f in futs]
        if self.kind is ExecutorKind.DASK:
            from tournament.dask_units import map_tasks

            return map_tasks(self._dask(), fn, items, self._token)
        raise ConfigError(f"unknown executor {self.kind}")  # pragma: no cover - enum is exhaustive

    def submit(self, fn: Callable, items: list) -> "Pending":
        """``map`` without waiting: the tasks are queued on the workers now and ``.result()`` returns
        what ``map`` would have (in order), so the driver works meanwhile (serial: they run at
        ``.result()``, in this process). Tasks queue in submission order."""
        items = list(items)
        self.n_tasks += len(items)
        if not items or self.kind is ExecutorKind.SERIAL:
            return Pending(lambda: [fn(self.ctx, it) for it in items])
        if self.kind is ExecutorKind.PROCESS:
            futs = [self._process_pool().submit(_run_task, fn, it) for it in items]
            return Pending(lambda: [f.result() for f in futs])
        if self.kind is ExecutorKind.DASK:
            from tournament.dask_units import run_dask_task

            client = self._dask()
            futs = [client.submit(run_dask_task, fn, it, self._token, pure=False) for it in items]

            def gather():
                try:
                    return list(client.gather(futs))
                finally:
                    for f in futs:
                        f.release()
            return Pending(gather)
        raise ConfigError(f"unknown executor {self.kind}")  # pragma: no cover - enum is exhaustive

    def close(self) -> None:
        """Stop the pool or the cluster this session started (a remote cluster's plugin is removed)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._client is not None:
            from tournament.dask_units import unregister

            try:
                unregister(self._client, self._token)
                self._client.close()
            finally:
                if self._cluster is not None:
                    self._cluster.close()
                self._client = self._cluster = self._token = None


class Pending:
    """Tasks of ``Session.submit``: ``result()`` waits for them once and returns their results in order."""

    def __init__(self, gather: Callable[[], list]):
        self._gather, self._out = gather, None

    def result(self) -> list:
        if self._gather is not None:
            self._out, self._gather = self._gather(), None
        return self._out


def execute(ctx: UnitContext, keys: list[UnitKey], kind: ExecutorKind, workers: int = 1,
            scheduler: str | None = None) -> Iterator[UnitOutput]:
    """Run ``keys`` and yield each unit's ``UnitOutput`` as it finishes (a ``Session`` of its own)."""
    kind = ExecutorKind(kind)
    if not keys:
        return
    with Session(ctx, kind, workers, scheduler) as session:
        yield from session.units(keys)


