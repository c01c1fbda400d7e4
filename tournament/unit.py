"""The durable unit of work: one window of one sweep setting (DESIGN section 1).

A unit runs every engine's selection (features and scores shared) and every profile x backend
allocation for that window. It is a pure function of the market, the config and the unit key, so any
executor may run it anywhere; its result is JSON-serialisable and written atomically to
``units/<setting id>/<k>.json`` before its ledger records are appended (the worker that ran it
encodes the file and its records: ``tournament.unit_output``). Twin units (``twin_key``: same
cut-off, train slice, gap and lookback in different settings) run together (``run_units``) and share
every decision but ``random``'s; each is still its own durable unit (file, records, result).

After a unit is persisted the driver keeps only its slim result (``UnitResult.slim``): what the
post-unit phase reads. Selections keep their atoms, ``htr_stage``, ``manifest`` (``degenerate``,
``hardened``, shrinkage), funnel and metrics; their rejected candidates, clusters, linkage and
pipeline audit (most of a unit's bytes, growing with the candidate pool) are on disk and in the
ledger only. Allocations keep everything but their diagnostics, of which only ``SLIM_DIAGNOSTICS``
(the objective, which ``tournament.verification`` compares) stay.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from allocation import AllocationConfig, ProblemCache, allocate
from contracts.allocation import Allocation, AllocationRequest
from contracts.cell import SettingKey
from contracts.enums import Backend, Direction, Logic, Profile
from contracts.selection import SelectionResult
from contracts.window import Window
from market.entropy import EntropyNullCache
from market.gates import atom_returns, atom_returns_array
from market.panel import simple_returns
from market.view import PastView
from selection.registry import LEGACY, FeatureCache, run_twin_windows
from tournament.config import TournamentConfig
from tournament.market_io import Market, pool_as_of
from tournament.verification import flag_reason


def derive_seed(base: int, *keys: str | int) -> int:
    """A seed from the base seed and a unit's key, never from execution order (CRC32 of each key)."""
    words = [int(base) & 0xFFFFFFFF] + [zlib.crc32(str(k).encode()) for k in keys]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


@dataclass(frozen=True)
class UnitKey:
    setting: SettingKey
    window: Window

    @property
    def id(self) -> str:
        return f"{self.setting.id}/{self.window.index}"


#: selection fields a slim result empties (on disk in units/ and portfolio_candidates.json)
SLIM_SELECTION_DROP = ("rejected", "clusters", "linkage", "linkage_labels", "pipeline_audit")


def _dropped() -> dict[str, Any]:
    """Fresh empty values of ``SLIM_SELECTION_DROP`` (their defaults in ``SelectionResult``)."""
    return {"rejected": [], "clusters": {}, "linkage": None, "linkage_labels": None, "pipeline_audit": []}
#: allocation diagnostics a slim result keeps (read by the post-unit phase)
SLIM_DIAGNOSTICS = ("objective",)


def slim_json(d: dict[str, Any]) -> dict[str, Any]:
    """``UnitResult.to_json()`` output reduced to the slim result's fields (see ``UnitResult.slim``)."""
    return {**d, "selections": {e: {**s, **_dropped()} for e, s in d["selections"].items()},
            "allocations": {k: {**a, "diagnostics": {x: a["diagnostics"][x] for x in SLIM_DIAGNOSTICS
                                                     if x in a["diagnostics"]}}
                            for k, a in d["allocations"].items()}}


@dataclass
class UnitResult:
    """Everything decided in one unit. ``allocations`` keys are ``engine|profile|backend``."""

    key: UnitKey
    selections: dict[str, SelectionResult]
    allocations: dict[str, Allocation]
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"setting": self.key.setting.model_dump(), "window": self.key.window.model_dump(),
                "selections": {e: s.model_dump(mode="json") for e, s in self.selections.items()},
                "allocations": {k: a.model_dump(mode="json") for k, a in self.allocations.items()},
                "seconds": self.seconds}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "UnitResult":
        key = UnitKey(SettingKey(**d["setting"]), Window(**d["window"]))
        return cls(key=key,
                   selections={e: SelectionResult.model_validate(s) for e, s in d["selections"].items()},
                   allocations={k: Allocation.model_validate(a) for k, a in d["allocations"].items()},
                   seconds=d.get("seconds", {}))

    def slim(self) -> "UnitResult":
        """What the post-unit phase reads (module docstring); equal to ``from_json(slim_json(d))``."""
        return UnitResult(
            key=self.key,
            selections={e: s.model_copy(update=_dropped()) for e, s in self.selections.items()},
            allocations={k: a.model_copy(update={"diagnostics": {x: a.diagnostics[x] for x in SLIM_DIAGNOSTICS
                                                                 if x in a.diagnostics}})
                         for k, a in self.allocations.items()},
            seconds=dict(self.seconds))


def alloc_key(engine: str, profile: Profile | str, backend: Backend | str) -> str:
    return f"{engine}|{Profile(profile).value}|{Backend(backend).value}"


def _cache_root():
    from tournament.run import cache_dir  # tournament.run imports this module
    return cache_dir()


def stored_feature_cache() -> FeatureCache:
    """A ``FeatureCache`` whose entropy null tables persist under the run cache folder
    (``cache_dir() / "entropy_null"``; market/entropy.py)."""
    return FeatureCache(null_cache=EntropyNullCache(store=_cache_root() / "entropy_null"))


@dataclass
class UnitContext:
    """What every unit of a run shares: market, config and per-process caches (explicit objects)."""

    market: Market
    config: TournamentConfig
    #: per-process caches; the entropy null tables also persist on disk under the run cache folder
    #: (the same tables bit for bit, so decisions do not depend on it)
    problem_cache: ProblemCache = field(default_factory=ProblemCache)
    feature_cache: FeatureCache = field(default_factory=stored_feature_cache)
    #: base windows the verification backends allocate under ``verification: sampled``
    #: (``tournament.verification.verification_sample``)
    verify_windows: frozenset = frozenset()
    #: window pools with derived scanner fields, by cut-off date (``pool_as_of`` is a function of the
    #: market and the cut-off; settings sharing a cut-off reuse it); at most ``max_pools`` kept
    pools: dict = field(default_factory=dict)
    max_pools: int = 64

    @cached_property
    def base_setting(self) -> SettingKey:
        """The base setting (``config.settings()[0]``), built once."""
        return self.config.settings()[0]

    def backends_for(self, setting: SettingKey) -> list[Backend]:
        """Backends whose allocations are cells at ``setting`` (``TournamentConfig.cell_backends``)."""
        return self.config.cell_backends(0 if setting == self.base_setting else 1)

    def verifies(self, setting: SettingKey, window: int, trial: Allocation) -> bool:
        """Under ``verification: sampled``: whether the verification backends allocate this pair."""
        cfg = self.config
        if cfg.verification != "sampled" or setting != self.base_setting:
            return False
        return window in self.verify_windows or flag_reason(trial) is not None

    def pool_as_of(self, view: PastView):
        """``tournament.market_io.pool_as_of`` for ``view``, computed once per cut-off date. The
        frame is shared by the units of that cut-off: engines copy a pool before changing it."""
        key = view.cutoff_date
        if key not in self.pools:
            self.pools[key] = pool_as_of(self.market, view.pool, key)
            while len(self.pools) > self.max_pools:
                self.pools.pop(next(iter(self.pools)))
        return self.pools[key]


@dataclass(frozen=True)
class UnitPanel:
    """What every engine's allocation request of one unit reads from the view, computed once:
    the closes as an array (bars x symbols), their simple returns, each symbol's column and the
    train-slice benchmark returns (None without a benchmark)."""

    px: np.ndarray
    returns: np.ndarray
    col: dict
    benchmark: Any
    #: train-slice return streams already computed for an engine's request, by ``(symbol, logic,
    #: direction, train start, train stop, gap)``: a stream is a function of that key alone
    #: (``market.gates.atom_returns_array`` runs column by column), so the engines of a unit that
    #: hold the same atom (v4, its challengers, ``raw``, ``random``) share one computation
    streams: dict = field(default_factory=dict)


def unit_panel(view: PastView) -> UnitPanel:
    """The ``UnitPanel`` of ``view`` (past-only: built from ``view``)."""
    train = slice(view.window.train_start, view.window.cutoff + 1)
    bench = None
    if view.benchmark is not None:
        bench = simple_returns(view.closes[[view.benchmark]]).iloc[train][view.benchmark]
    return UnitPanel(px=view.closes.to_numpy(dtype=np.float64),
                     returns=simple_returns(view.closes).to_numpy(),
                     col={s: j for j, s in enumerate(view.closes.columns)}, benchmark=bench)


def allocation_request(view: PastView, sel: SelectionResult, periods_per_year: int,
                       panel: UnitPanel | None = None) -> AllocationRequest:
    """Train-slice inputs of one engine's atoms (past-only: built from ``view``).

    ``panel`` (``unit_panel(view)``, shared by the engines of a unit) gives the closes and returns
    as arrays: an atom's stream and an asset's returns are computed column by column (gates from
    cumulative sums down each column, returns element by element), so taking the atoms' columns
    out of the whole panel gives the numbers of the atoms' own sub-panel."""
    panel = panel if panel is not None else unit_panel(view)
    atoms = sel.atoms
    train = slice(view.window.train_start, view.window.cutoff + 1)
    symbols = sorted({x.symbol for x in atoms})
    idx = view.closes.index[train]
    if atoms:
        gap = view.window.gap
        keys = [(x.symbol, Logic(x.logic).value, Direction(x.direction).value, train.start, train.stop, gap)
                for x in atoms]
        todo = {k: x for k, x in zip(keys, atoms) if k not in panel.streams}
        if todo:
            fresh = atom_returns_array(panel.px, panel.returns, panel.col, list(todo.values()), gap=gap)[train]
            for j, k in enumerate(todo):
                panel.streams[k] = fresh[:, j]
        streams = np.empty((len(idx), len(atoms)))  # C order, as the whole array's train rows were
        for j, k in enumerate(keys):
            streams[:, j] = panel.streams[k]
        a = pd.DataFrame(streams, index=idx, columns=[x.id for x in atoms])
    else:
        a = atom_returns(view.closes[[]], [], gap=view.window.gap).iloc[train]
    assets = None
    if symbols:
        cols = [panel.col[s] for s in symbols]
        assets = pd.DataFrame(panel.returns[train][:, cols], index=idx, columns=view.closes.columns[cols])
    return AllocationRequest(atoms=atoms, atom_returns=a, asset_returns=assets,
                             benchmark_returns=None if panel.benchmark is None else panel.benchmark.copy(),
                             shrinkage=sel.shrinkage,
                             periods_per_year=periods_per_year)


def twin_key(key: UnitKey) -> tuple:
    """What a unit's decisions depend on besides its seed and window number: the cut-off, the train
    slice, the fill gap and the feature lookback (the step and the test length only say how long the
    decision is held). Units with equal twin keys are *twins* (``run_units``)."""
    w = key.window
    return (w.cutoff, w.train_start, w.gap, key.setting.feature_lookback)


def twin_groups(keys: list[UnitKey]) -> list[list[UnitKey]]:
    """``keys`` grouped by ``twin_key``, groups in the order of their first key, keys in their
    order: what one task runs (``run_units``), so twins share their work on any executor."""
    groups: dict[tuple, list[UnitKey]] = {}
    for k in keys:
        groups.setdefault(twin_key(k), []).append(k)
    return list(groups.values())


def dispatch_order(groups: list[list[UnitKey]], ctx: UnitContext) -> list[list[UnitKey]]:
    """``groups`` (``twin_groups``) in the order the workers take them: the groups holding a base window
    that the verification backends allocate in full (``ctx.verify_windows``) first, each part in its
    own order. Those units cost several times the others (riskfolio solves: ~0.1 s each against ~1 ms
    native), so started first they do not leave one worker finishing a heavy unit while the other
    idles at the end (longest first: replayed on 2 workers with the quick preset's recorded unit
    times, the last finish drops from 1.059 to 1.015 times the ideal, a perfect split of the work).
    No output depends on the order."""
    base = ctx.base_setting

    def heavy(g: list[UnitKey]) -> bool:
        return any(k.setting == base and k.window.index in ctx.verify_windows for k in g)

    return [g for g in groups if heavy(g)] + [g for g in groups if not heavy(g)]


#: generation-0 threshold of the cyclic garbage collector while a run or a unit runs
#: (``collector_threshold``); Python's default is 700
GC_THRESHOLD0 = 20_000


@contextlib.contextmanager
def collector_threshold(threshold0: int = GC_THRESHOLD0) -> Iterator[None]:
    """The cyclic garbage collector's generation-0 threshold set to ``threshold0`` (restored afterwards,
    also on an exception); no number depends on it. ``tournament.run.run_tournament`` runs under it
    (the driver, and the workers it forks inherit it) and so does each unit (``run_units``: any
    executor, spawned workers included).

    A unit allocates hundreds of thousands of short-lived containers (pandas frames and indexes,
    pydantic models, cvxpy expressions), the driver as many ledger records and unit outputs, and
    reference counting frees them; the default threshold ran a collection every 700 of them (quick
    preset: 1,551 collections, 1.7 s of the driver's 5.6 CPU-s; 46 and 0.5 s under this threshold).
    At most ~20,000 uncollected containers are held between collections, so memory stays bounded.
    With ``selection_strings``, a serial sample of 56 full-preset units (``benchmarks/unit_cpu.py``)
    run at the same time as the code without them, two pairs: 14.11 / 15.01 -> 13.19 / 13.68 CPU-s
    (-7%); peak RSS of that sample 451.3 MB before and 451.0 MB with every change of its session.
    """
    old = gc.get_threshold()
    gc.set_threshold(threshold0, *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def selection_strings():
    """pandas' ``mode.string_storage`` set to ``"python"`` for the selection engines' calls: pandas >= 3
    stores inferred strings (symbols, atom ids, labels) as Arrow strings by default, whose element
    access and construction dominated the engines' per-candidate pandas work (together with
    ``collector_threshold``, in its sample: v4 family -15% / -22%, v3.4 -17% / -16% CPU; the two
    settings were not measured apart in this form). Labels only: the same strings in the same order, the
    floats untouched (``benchmarks/unit_parity.py``: the units' decisions bit for bit). No frame built
    under it leaves the engines: their results are ``SelectionResult`` models of plain values."""
    return pd.option_context("mode.string_storage", "python")


def run_unit(ctx: UnitContext, key: UnitKey) -> UnitResult:
    """Select with every engine, then allocate with every profile and backend, for one unit."""
    return run_units(ctx, [key])[0]


def run_units(ctx: UnitContext, keys: list[UnitKey]) -> list[UnitResult]:
    """``[run_unit(ctx, k) for k in keys]`` for twin units (equal ``twin_key``; ``ValueError``
    otherwise), each decision computed once: the selections of every engine but ``random``
    (``selection.registry.run_twin_windows``) and their allocations (an allocation is a function of
    its request, which is the same for twins: same atoms, train slice and gap) are those of the first
    unit that computed them, labelled with each unit's window; ``random`` is drawn and allocated per
    unit from its own seed. ``tests/tournament/test_twins.py`` compares with separate units. A unit's
    ``seconds`` are the time spent on it (a twin's are small)."""
    if not keys:
        return []
    if len({twin_key(k) for k in keys}) != 1:
        raise ValueError(f"run_units: units {[k.id for k in keys]} are not twins (tournament.unit.twin_key)")
    with collector_threshold():
        return _run_units(ctx, keys)


def _run_units(ctx: UnitContext, keys: list[UnitKey]) -> list[UnitResult]:
    m, cfg = ctx.market, ctx.config
    t0 = time.perf_counter()
    views = []
    for key in keys:
        view = PastView.at(m.closes, m.snapshots, key.window, m.calendar, m.benchmark)
        views.append(dataclasses.replace(view, pool=ctx.pool_as_of(view)))
    sel_cfg = cfg.selection.for_lookback(keys[0].setting.feature_lookback)
    seeds = [derive_seed(cfg.seed, key.setting.id, key.window.index) for key in keys]
    # the v4 family (v4, challengers, raw, random) shares one pass; the frozen v3.4 engine runs alone:
    # two calls, timed apart for the per-phase profile (the results are those of one call)
    seconds: dict[str, float] = {}
    found: list[dict[str, SelectionResult]] = [{} for _ in keys]
    for group, names in (("v4_family", [e for e in cfg.engines if e != LEGACY]),
                         (LEGACY, [e for e in cfg.engines if e == LEGACY])):
        if names:
            ts = time.perf_counter()
            with selection_strings():
                found_group = run_twin_windows(views, names, sel_cfg, seeds, ctx.feature_cache)
            for f, r in zip(found, found_group):
                f.update(r)
            seconds[f"selection:{group}"] = time.perf_counter() - ts
    t1 = time.perf_counter()
    acfg = AllocationConfig()
    ts = time.perf_counter()
    panel = unit_panel(views[0])  # the same closes for twins
    seconds["allocation:requests"] = time.perf_counter() - ts
    # decisions of the group: (engine, profile, backend) -> allocation, engines but `random` (same request)
    shared: dict[str, Allocation] = {}
    requests: dict[str, AllocationRequest] = {}
    out: list[UnitResult] = []
    for i, (key, view) in enumerate(zip(keys, views)):
        sec = dict(seconds) if i == 0 else {}
        ta = t1 if i == 0 else time.perf_counter()
        selections = {e: found[i][e] for e in cfg.engines}
        allocations: dict[str, Allocation] = {}
        backends = ctx.backends_for(key.setting)

        own: dict[str, AllocationRequest] = {}  # this unit's `random` request

        def alloc(engine: str, profile: str, backend) -> Allocation:
            k = alloc_key(engine, profile, backend)
            if engine != "random" and k in shared:
                return shared[k]
            reqs = own if engine == "random" else requests
            if engine not in reqs:
                ts = time.perf_counter()
                reqs[engine] = allocation_request(view, selections[engine], m.calendar.periods_per_year, panel)
                sec["allocation:requests"] = sec.get("allocation:requests", 0.0) + time.perf_counter() - ts
            ts = time.perf_counter()
            a = allocate(reqs[engine], Profile(profile), Backend(backend), acfg, ctx.problem_cache)
            name = f"allocation:{Backend(backend).value}"
            sec[name] = sec.get(name, 0.0) + time.perf_counter() - ts
            if engine != "random":
                shared[k] = a
            return a

        for engine in cfg.engines:
            for profile in cfg.profiles:
                for backend in backends:
                    allocations[alloc_key(engine, profile, backend)] = alloc(engine, profile, backend)
                trial = allocations[alloc_key(engine, profile, cfg.trial_backend)]
                if cfg.verification_backends and ctx.verifies(key.setting, key.window.index, trial):
                    for backend in cfg.verification_backends:
                        allocations[alloc_key(engine, profile, backend)] = alloc(engine, profile, backend)
        t2 = time.perf_counter()
        sel_seconds = (t1 - t0) if i == 0 else 0.0
        out.append(UnitResult(key=key, selections=selections, allocations=allocations,
                              seconds={"selection": sel_seconds, "allocation": t2 - ta, **sec}))
    return out
