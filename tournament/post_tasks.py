"""The post-unit phase's tasks (issue 16: every phase distributed), run by ``tournament.executors.Session.map``.

Each task is a pure module-level function ``fn(ctx, item)``: ``ctx`` is the worker's ``UnitContext`` of
the run (its market: the simulation's closes come from there, never shipped per task) and ``item`` one
batch. Batches are cut by ``batches`` at fixed sizes (the constants below), the simulation's by
``sim_batches`` under a memory budget (``SIM_BATCH_BYTES``), never from the executor or the worker
count, and every figure inside a batch is computed exactly as the driver computed it
alone (same seeds, same calls), so the outputs are identical on every executor and worker count
(DESIGN section 3). SPA, the MCS and PBO itself are one task each (``call_task``: the driver's call,
made on a worker). ``submit_*`` queue a kind's tasks without waiting (``executors.Session.submit``) so
the driver writes files and runs the checks meanwhile (issue 23). Holm, the verdicts, the DSR summary,
the ledger appends and the file writes stay in the driver.

Batch sizes: a task costs about 1-5 ms of scheduling and pickling on the process pool (more on Dask);
a cell's statistics about 30-100 ms; the sizes keep the overhead near 1% while leaving enough
tasks (full preset: 300 cells, 252 pairs) to keep two to eight workers busy. A simulation task's
memory grows with its cells' bars x columns (dense arrays, then one row per held atom and bar), so
its batches are cut by that product: on the large preset's 1,000-candidate market most cells
(hundreds to thousands of atom columns over up to 2,190 bars) form a task alone. Its positions and exposure rows go back to the driver encoded
(``SimPart``), the only form the driver holds them in until it writes them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: cells per task of the matrix statistics (compute_metrics, sharpe_ci, PSR, DSR)
STATS_BATCH = 16
#: cells per task of the regime figures (three regime CIs per cell)
REGIME_BATCH = 16
#: pairs per task of the paired Sharpe tests
PAIRS_BATCH = 12
#: bootstrap replicates per task of the PBO null (a CSCV of 12,870 combinations each)
PBO_NULL_BATCH = 5
#: memory budget of one simulation task, bytes: its cells' ``bars x columns x SIM_BYTES_PER_VALUE``
#: (``sim_batches``); the number of cells per task follows the market's width, not a fixed count
SIM_BATCH_BYTES = 256 * 2**20
#: bytes per (bar, column) of the estimate: ``simulation.engine``'s own estimate for its vectorbt chunks
#: (16 float64 arrays of bars x columns); the reference simulator's arrays are half of it. The long
#: positions and exposure frames hold one row per held atom and bar, at most bars x columns rows
SIM_BYTES_PER_VALUE = 128


def batches(items: list, size: int) -> list[list]:
    """``items`` cut into contiguous batches of ``size`` (the last may be shorter)."""
    return [items[i:i + size] for i in range(0, len(items), size)]


def run_batches(session, fn, chunks: list) -> list:
    """``fn(ctx, chunk)`` per chunk on ``session`` (``executors.Session.map``: in order), or in this
    process with no context when ``session`` is None."""
    return session.map(fn, chunks) if session is not None else [fn(None, c) for c in chunks]


def submit_batches(session, fn, chunks: list, then=None):
    """``run_batches`` without waiting (``executors.Session.submit``): an ``executors.Pending`` whose
    ``result()`` is ``then(results)`` (default: the results). ``session`` None: run at ``result()``
    in this process."""
    from tournament.executors import Pending

    if session is None:
        p = Pending(lambda: [fn(None, c) for c in chunks])
    else:
        p = session.submit(fn, chunks)
    return p if then is None else Pending(lambda: then(p.result()))


def submit_call(session, fn, *args):
    """``fn(*args)`` as one task on ``session`` (``Call``): a ``Pending`` whose ``result()`` is its
    value (the ``submit`` that ``audit.run_audit.audit_run`` takes)."""
    return submit_batches(session, call_task, [Call(fn, args)], lambda out: out[0])


def _flat(parts: list) -> list:
    return [r for part in parts for r in part]


@dataclass(frozen=True)
class Call:
    """One run-level statistic as a task (``call_task``): ``fn(*args, **kwargs)``, ``fn`` a
    module-level function (pickled by reference), e.g. ``audit.statistics.spa_test``."""

    fn: object
    args: tuple = ()
    kwargs: dict | None = None


def call_task(ctx, call: Call):
    """``call.fn(*call.args, **call.kwargs)`` on a worker (the same call the driver would make)."""
    return call.fn(*call.args, **(call.kwargs or {}))


# -- performance matrix: per-cell statistics --------------------------------------------------------------

@dataclass(frozen=True)
class CellStatsJob:
    """One cell's series and the arguments of its statistics (``tournament.matrix``)."""

    cell_id: str
    values: np.ndarray
    seed: int
    trial: bool  # DSR against the common frame


@dataclass(frozen=True)
class StatsBatch:
    jobs: list
    periods_per_year: float
    n_boot: int
    alpha: float
    #: ``audit.statistics.psr.trial_set`` of the trials on common dates (DSR), computed once in the
    #: driver; None when fewer than 2 trials
    trials: object | None
    dsr_method: str


def cell_stats_task(ctx, batch: StatsBatch) -> list[dict]:
    """Per cell: ``compute_metrics``, ``sharpe_ci``, ``probabilistic_sharpe`` and (trials) ``deflated_sharpe``."""
    from audit.metrics import compute_metrics
    from audit.statistics import deflated_sharpe, probabilistic_sharpe, sharpe_ci

    out = []
    for j in batch.jobs:
        m = compute_metrics(j.values, batch.periods_per_year)
        ci = sharpe_ci(j.values, batch.periods_per_year, seed=j.seed, n_boot=batch.n_boot, alpha=batch.alpha)
        psr = probabilistic_sharpe(j.values)
        dsr = (deflated_sharpe(j.values, method=batch.dsr_method, trials=batch.trials)
               if j.trial and batch.trials is not None else None)
        out.append({"metrics": m, "ci": ci, "psr": psr, "dsr": dsr})
    return out


def cell_stats(session, jobs: list[CellStatsJob], **shared) -> list[dict]:
    """``cell_stats_task`` over ``jobs`` in batches of ``STATS_BATCH`` (results in ``jobs``' order)."""
    return submit_cell_stats(session, jobs, **shared).result()


def submit_cell_stats(session, jobs: list[CellStatsJob], **shared):
    """``cell_stats`` without waiting (``submit_batches``)."""
    chunks = [StatsBatch(jobs=b, **shared) for b in batches(jobs, STATS_BATCH)]
    return submit_batches(session, cell_stats_task, chunks, _flat)


# -- paired Sharpe tests ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PairJob:
    a: np.ndarray
    b: np.ndarray
    seed: int


@dataclass(frozen=True)
class PairsBatch:
    jobs: list
    periods_per_year: float
    n_boot: int
    alpha: float
    confirm_n_boot: int | None


def paired_task(ctx, batch: PairsBatch) -> list[dict]:
    """``paired_sharpe_test(...).to_dict()`` per pair of the batch."""
    from audit.statistics import paired_sharpe_test

    return [paired_sharpe_test(j.a, j.b, batch.periods_per_year, seed=j.seed, n_boot=batch.n_boot,
                               alpha=batch.alpha, confirm_n_boot=batch.confirm_n_boot).to_dict()
            for j in batch.jobs]


def paired_tests(session, jobs: list[PairJob], **shared) -> list[dict]:
    return submit_paired_tests(session, jobs, **shared).result()


def submit_paired_tests(session, jobs: list[PairJob], **shared):
    """``paired_tests`` without waiting (``submit_batches``)."""
    chunks = [PairsBatch(jobs=b, **shared) for b in batches(jobs, PAIRS_BATCH)]
    return submit_batches(session, paired_task, chunks, _flat)


# -- PBO null replicates -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PBONullBatch:
    x: np.ndarray          # T x N demeaned trials
    idx: np.ndarray        # reps x T row indices (drawn in the driver)
    n_splits: int


def pbo_null_task(ctx, batch: PBONullBatch) -> list[float]:
    """PBO (CSCV) of each resample ``x[i]`` of the batch."""
    from audit.statistics import pbo_cscv

    return [pbo_cscv(batch.x[i], n_splits=batch.n_splits, records=False).pbo for i in batch.idx]


def pbo_null_values(session, x: np.ndarray, idx: np.ndarray, n_splits: int) -> np.ndarray:
    return submit_pbo_null(session, x, idx, n_splits).result()


def submit_pbo_null(session, x: np.ndarray, idx: np.ndarray, n_splits: int):
    """``pbo_null_values`` without waiting (``submit_batches``)."""
    chunks = [PBONullBatch(x=x, idx=idx[i:i + PBO_NULL_BATCH], n_splits=n_splits)
              for i in range(0, idx.shape[0], PBO_NULL_BATCH)]
    return submit_batches(session, pbo_null_task, chunks, lambda out: np.array(_flat(out)))


# -- regime figures ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RegimeBatch:
    returns: pd.DataFrame   # columns cell_id, date, return of the batch's cells
    labels: pd.Series       # regime per date
    periods_per_year: float
    seed: int
    n_boot: int
    alpha: float
    min_days: int


@dataclass(frozen=True)
class RegimeSeed:
    """``seed_of(cell_id, regime)`` of ``audit.regimes.regime_figures``: ``derive_seed(base,
    "regime_sharpe_ci", cell_id, regime)`` (picklable, unlike a closure)."""

    base: int

    def __call__(self, cid: str, reg: str) -> int:
        from tournament.unit import derive_seed

        return derive_seed(self.base, "regime_sharpe_ci", cid, reg)


def regime_task(ctx, batch: RegimeBatch) -> pd.DataFrame:
    from audit.regimes import regime_figures

    return regime_figures(batch.returns, batch.labels, batch.periods_per_year, seed_of=RegimeSeed(batch.seed),
                          n_boot=batch.n_boot, alpha=batch.alpha, min_days=batch.min_days)


def regime_frames(session, returns: pd.DataFrame, labels: pd.Series, **shared) -> pd.DataFrame:
    """``regime_figures`` of ``returns`` in batches of ``REGIME_BATCH`` cells (sorted cell ids, the
    order ``regime_figures`` itself uses), concatenated: the same rows as one call."""
    return submit_regime_frames(session, returns, labels, **shared).result()


def submit_regime_frames(session, returns: pd.DataFrame, labels: pd.Series, **shared):
    """``regime_frames`` without waiting (``submit_batches``)."""
    cids = sorted(str(c) for c in pd.unique(returns["cell_id"].astype(str)))
    key = returns["cell_id"].astype(str)
    sub = returns[["cell_id", "date", "return"]]
    chunks = [RegimeBatch(returns=sub[key.isin(b).to_numpy()], labels=labels, **shared)
              for b in batches(cids, REGIME_BATCH)]
    return submit_batches(session, regime_task, chunks, _concat_regimes)


def _concat_regimes(out: list) -> pd.DataFrame:
    from audit.regimes import FIGURE_COLUMNS

    if not out:
        return pd.DataFrame([], columns=FIGURE_COLUMNS)
    return pd.concat(out, ignore_index=True)


# -- simulation -------------------------------------------------------------------------------------------

def sim_columns(plan) -> int:
    """Columns a cell's plan gives the simulation: its distinct (atom id, symbol) pairs with a positive
    weight in some window, plus one (``simulation.schedule.chunk_plans``' count)."""
    return len({(a.id, a.symbol) for wp in plan.windows for a in wp.atoms if wp.weights.get(a.id, 0.0) > 0}) + 1


def sim_batches(plans: list, budget: int | None = None) -> list[list]:
    """``plans`` cut into contiguous batches whose dense simulation arrays stay within ``budget``
    (default ``SIM_BATCH_BYTES``): a batch costs ``bars x columns x SIM_BYTES_PER_VALUE``, its bars the
    span from its earliest first cut-off to its latest last test bar, its columns its cells'
    ``sim_columns`` summed. A cell above the budget alone forms its own batch. Depends on the plans
    only (never on the executor or the worker count)."""
    budget = SIM_BATCH_BYTES if budget is None else budget
    out: list[list] = []
    cur: list = []
    lo = hi = cols = 0
    for p in plans:
        c = sim_columns(p)
        if cur:
            n_lo, n_hi, n_cols = min(lo, p.start_bar), max(hi, p.end_bar), cols + c
            if (n_hi - n_lo + 1) * n_cols * SIM_BYTES_PER_VALUE <= budget:
                cur.append(p)
                lo, hi, cols = n_lo, n_hi, n_cols
                continue
            out.append(cur)
        cur, lo, hi, cols = [p], p.start_bar, p.end_bar, c
    if cur:
        out.append(cur)
    return out


@dataclass(frozen=True)
class SimBatch:
    plans: list
    kind: str
    config: object  # simulation.SimulationConfig


@dataclass(frozen=True)
class SimPart:
    """One simulation task's output: ``returns``, ``summary`` and ``events`` as ``simulation.simulate``
    gives them; its ``positions`` and ``exposure`` frames (already checked against their schemas) as
    zstd-compressed Arrow IPC streams (``encode_frame``), which the driver appends to the files batch by
    batch (``tournament.rundir.write_parquet_parts``) without holding every cell's rows decoded."""

    returns: pd.DataFrame
    summary: pd.DataFrame
    events: list
    positions: bytes
    exposure: bytes


def encode_frame(frame: pd.DataFrame) -> bytes:
    """``frame`` as an Arrow IPC stream (zstd buffers; ``pa.Table.from_pandas(frame, preserve_index=False)``,
    the table ``DataFrame.to_parquet(index=False)`` writes): decoded, the same table."""
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def simulate_task(ctx, batch: SimBatch) -> SimPart:
    """``simulation.simulate`` of the batch's plans on the worker's closes (``ctx.market.closes``)."""
    from simulation import simulate

    res = simulate(ctx.market.closes, batch.plans, batch.kind, batch.config)
    pos, exp = encode_frame(res.positions), encode_frame(res.exposure)
    return SimPart(returns=res.returns, summary=res.summary, events=res.events, positions=pos, exposure=exp)


def warm_simulation_task(ctx, item) -> int:
    """A two-asset, two-window simulation of each kind, discarded: it imports vectorbt and loads the
    compiled functions the simulators call (numba's cache), ~1.6 CPU-s a worker, so the run's first
    simulation task does not pay them. ``finish_run`` queues one per worker when the units are done,
    while the driver builds the plans and the workers would otherwise idle; no output depends on it.
    Returns the process id."""
    from contracts.atom import StrategyAtom
    from contracts.enums import Direction, Logic
    from simulation import CellPlan, SimulationConfig, WindowPlan, make_windows, simulate

    idx = pd.date_range("2020-01-01", periods=60, freq="D", tz="UTC")
    px = 100.0 * np.exp(np.cumsum(np.random.default_rng(0).normal(0.0, 0.02, (60, 2)), axis=0))
    closes = pd.DataFrame(px, index=idx, columns=["A", "B"])
    atoms = [StrategyAtom(id=f"{s}_rating_LONG", symbol=s, identity=s, direction=Direction.LONG,
                          logic=Logic.RATING, cluster=0) for s in ("A", "B")]
    plan = CellPlan(cell_id="warm", windows=[WindowPlan(window=w, atoms=atoms,
                                                        weights={"A_rating_LONG": 0.5, "B_rating_LONG": 0.5})
                                             for w in make_windows(60, 30, 10, gap=1)])
    for kind in ("vectorbt", "reference"):
        simulate(closes, [plan], kind, SimulationConfig())
    return os.getpid()


def submit_warm_simulation(session):
    """One ``warm_simulation_task`` per worker of ``session`` (None for the serial executor, whose
    simulation runs in the driver: nothing to warm ahead)."""
    from contracts.enums import ExecutorKind

    if session is None or session.kind is ExecutorKind.SERIAL:
        return None
    return submit_batches(session, warm_simulation_task, list(range(session.workers)))


def where_task(ctx, item) -> tuple[int, int, object]:
    """``(process id, bars in the worker's market, item)``: where a session's tasks run (tests,
    benchmarks). An item ``{"sleep": seconds, ...}`` sleeps that long first (a task to kill a worker
    under)."""
    if isinstance(item, dict) and "sleep" in item:
        import time

        time.sleep(float(item["sleep"]))
    return os.getpid(), len(ctx.market.closes.index), item
