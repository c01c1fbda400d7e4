"""Executors: where units run (serial, a local process pool, or Dask). Never confuse with backends.

Results are yielded as units finish (order may differ across executors: the ledger order may, the
decisions may not). Solver and BLAS threads are pinned to 1 in every executor, serial included.
Process-pool workers exit when their driver dies, even by SIGKILL (``contracts.lifetime``); on Dask
the market travels once to each worker in the run's plugin, which keeps one ``UnitContext`` per
worker (``tournament.dask_units``).
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Iterator

from contracts.enums import ExecutorKind
from contracts.errors import ConfigError
from contracts.lifetime import die_with_parent
from tournament.unit import UnitContext, UnitKey, run_unit
from tournament.unit_output import UnitOutput, unit_output

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                "RAYON_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def pin_threads() -> None:
    """Pin BLAS/OpenMP/Rayon (Clarabel) threads to 1 in this process."""
    for v in _THREAD_VARS:
        os.environ[v] = "1"
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)


def _run_pinned(ctx: UnitContext, key: UnitKey) -> UnitOutput:
    """One unit, encoded where it ran (``tournament.unit_output``: file bytes, records, slim result)."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):
        return unit_output(run_unit(ctx, key), ctx.market.closes.index)


# Process-pool workers keep their context here: set once by the initializer in each worker process
# (process-local, never shared or mutated after start).
_WORKER_CTX: dict[str, UnitContext] = {}


def _init_worker(market, config, verify_windows=frozenset(), parent_pid: int | None = None) -> None:
    if parent_pid is not None:  # exit when the driver dies, even by SIGKILL (contracts.lifetime)
        die_with_parent(parent_pid)
    pin_threads()
    _WORKER_CTX["ctx"] = UnitContext(market=market, config=config, verify_windows=verify_windows)


def _run_in_worker(key: UnitKey) -> UnitOutput:
    return _run_pinned(_WORKER_CTX["ctx"], key)


def execute(ctx: UnitContext, keys: list[UnitKey], kind: ExecutorKind, workers: int = 1,
            scheduler: str | None = None) -> Iterator[UnitOutput]:
    """Run ``keys`` and yield each unit's ``UnitOutput`` as it finishes."""
    kind = ExecutorKind(kind)
    if not keys:
        return
    if kind is ExecutorKind.SERIAL:
        for k in keys:
            yield _run_pinned(ctx, k)
    elif kind is ExecutorKind.PROCESS:
        with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                                 initargs=(ctx.market, ctx.config, ctx.verify_windows, os.getpid())) as pool:
            # no list of the futures: as_completed drops each one it yields, so a unit's output is
            # freed once the driver has persisted it
            for f in as_completed([pool.submit(_run_in_worker, k) for k in keys]):
                yield f.result()
    elif kind is ExecutorKind.DASK:
        yield from _execute_dask(ctx, keys, workers, scheduler)
    else:  # pragma: no cover - enum is exhaustive
        raise ConfigError(f"unknown executor {kind}")


def _execute_dask(ctx: UnitContext, keys: list[UnitKey], workers: int, scheduler: str | None) -> Iterator[UnitOutput]:
    from dask.distributed import Client, LocalCluster

    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        # no dashboard; the scheduler's HTTP routes (health, metrics) on a free loopback port, not the
        # default 8787 on every interface (busy whenever another cluster runs on the machine)
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                               env={v: "1" for v in _THREAD_VARS})
        client = Client(cluster)
    try:
        from tournament.dask_units import run_units  # one UnitContext per worker, reused across units

        yield from run_units(client, ctx, keys)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
