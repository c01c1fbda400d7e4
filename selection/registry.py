"""Engine registry: one window, every requested engine, features/scores/clusters computed once.

Engines: ``v4`` (champion Log-MPS), ``v4:<scorer>`` for each challenger of the config (the same
policy on that scorer's scores), ``raw`` and ``random`` (baselines, same partitioning), and
``v3.4`` (the frozen legacy engine, imported lazily from ``selection.legacy.engine``; it computes
everything by its own code and shares only the entropy null tables).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from contracts.errors import ConfigError
from contracts.selection import SelectionResult
from market.entropy import EntropyNullCache
from market.view import PastView
from selection.baselines import random_result, raw_result
from selection.config import SelectionConfig
from selection.pipeline.context import SelectionContext
from selection.pipeline.orchestrator import CHAMPION, prepare, select
from selection.pipeline.results import result_parts, v4_result

ENGINES: tuple[str, ...] = ("v4", "v4:ridge", "raw", "random", "v3.4")
LEGACY = "v3.4"


def engine_names(config: SelectionConfig) -> list[str]:
    """Every engine name valid under ``config`` (one ``v4:<scorer>`` per configured challenger)."""
    return ["v4", *[f"v4:{c}" for c in config.challengers], "raw", "random", LEGACY]


def _view_key(view: PastView, config: SelectionConfig) -> tuple:
    """Everything that determines a prepared context: window, cut-off, config, pool and closes."""
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(view.pool, index=False).to_numpy().tobytes())
    h.update(np.ascontiguousarray(view.closes.to_numpy(dtype=np.float64)).tobytes())
    h.update(",".join(map(str, view.closes.columns)).encode())
    w = view.window
    return (w.index, w.train_start, w.cutoff, view.cutoff_date.isoformat(),
            view.calendar.periods_per_year, config.model_dump_json(), h.hexdigest())


@dataclass
class FeatureCache:
    """Explicit cache of prepared contexts (features, scores, clusters) and the entropy null tables.

    Keyed by the window, the config and digests of the pool and the closes; ``hits``/``misses``
    count look-ups. ``max_entries`` bounds memory (oldest entry evicted first).
    """

    null_cache: EntropyNullCache = field(default_factory=EntropyNullCache)
    max_entries: int = 8
    entries: dict[tuple, SelectionContext] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0

    def prepared(self, view: PastView, config: SelectionConfig) -> SelectionContext:
        key = _view_key(view, config)
        if key in self.entries:
            self.hits += 1
            return self.entries[key]
        self.misses += 1
        ctx = prepare(view, config, self.null_cache)
        self.entries[key] = ctx
        while len(self.entries) > self.max_entries:
            self.entries.pop(next(iter(self.entries)))
        return ctx


def legacy_config(config: SelectionConfig):
    """The frozen v3.4 engine's config for one window: its own constants (``LegacyConfig``'s
    defaults, which are SELECTION_SPEC's), with only ``feature_lookback`` taken from ``config``
    (a tournament dimension that every engine follows). Nothing else of ``config`` reaches v3.4: a
    run's ``selection:`` block configures v4, its challengers and the baselines, never the benchmark
    (its liquidity floors, scanner depth and five policy settings are module constants anyway).
    ``legacy_settings()`` lists everything v3.4 runs with, for the ledger."""
    from selection.legacy.engine import LegacyConfig  # lazy: registry is outside selection.pipeline

    return LegacyConfig(feature_lookback=config.feature_lookback)


def legacy_settings() -> dict:
    """Every constant the v3.4 engine runs with (JSON-ready; ``feature_lookback`` is per setting)."""
    from selection.legacy import engine as E
    from selection.legacy import features as F

    cfg = E.LegacyConfig().model_dump(mode="json", exclude={"feature_lookback"})
    cfg["weights"] = {f: w for f, _, w in E.LOG_MPS}
    return {**cfg, "sector_cap": E.SECTOR_CAP, "tail_vetoes": E.TAIL_VETOES, "hardening": E.HARDENING,
            "top_n_floor": E.TOP_N_FLOOR, "max_winners": E.MAX_WINNERS,
            "liquidity_floor_perp": F.PERP_FLOOR, "liquidity_floor_other": F.OTHER_FLOOR,
            "depth_cap": F.SCANNER_DEPTH}


def run_window(view: PastView, engines: list[str], config: SelectionConfig, seed: int,
               cache: FeatureCache | None = None) -> dict[str, SelectionResult]:
    """Selection of every engine in ``engines`` for one window (results keyed by engine name).

    Features, scores, hard vetoes, hardening and clusters are computed once and shared by ``v4``,
    every ``v4:<scorer>``, ``raw`` and ``random``; ``random`` draws as many as ``v4`` selects, seeded
    from ``seed`` and the window key. Unknown names raise ``ConfigError``.
    """
    return run_twin_windows([view], engines, config, [seed], cache)[0]


def same_decision_inputs(a: PastView, b: PastView) -> bool:
    """Whether two views are *twins*: windows of different settings (or numbers) whose selection
    inputs are the same (cut-off bar and date, train slice, pool, calendar, benchmark); only the
    window number, step and test length may differ, which no engine reads but to label its result
    (``window``) and to seed ``random``. The closes are compared by identity or shape plus the
    cut-off date, as ``PastView.at`` cuts one market's closes at the cut-off."""
    wa, wb = a.window, b.window
    return (wa.cutoff == wb.cutoff and wa.train_start == wb.train_start
            and a.cutoff_date == b.cutoff_date and a.closes.shape == b.closes.shape
            and a.closes.columns.equals(b.closes.columns) and a.pool is b.pool
            and a.calendar == b.calendar and a.benchmark == b.benchmark)


def run_twin_windows(views: list[PastView], engines: list[str], config: SelectionConfig, seeds: list[int],
                     cache: FeatureCache | None = None) -> list[dict[str, SelectionResult]]:
    """``run_window`` of each of ``views`` with its seed, for twin views (``same_decision_inputs``):
    every engine but ``random`` is computed once, on ``views[0]``, and each twin's result is that
    result labelled with the twin's window number (what an engine computes does not depend on the
    number: ``tests/tournament/test_twins.py`` compares with separate calls); ``random`` is drawn for
    each twin from its own seed and window key (``selection.baselines.random_seed``) on the shared
    context. Views that are not twins raise ``ValueError``."""
    if not views or len(views) != len(seeds):
        raise ValueError(f"run_twin_windows: {len(views)} view(s) and {len(seeds)} seed(s)")
    for v in views[1:]:
        if not same_decision_inputs(views[0], v):
            raise ValueError(f"run_twin_windows: window {v.window.index} (cut-off {v.window.cutoff}, train "
                             f"start {v.window.train_start}) is not a twin of window {views[0].window.index} "
                             f"(cut-off {views[0].window.cutoff}, train start {views[0].window.train_start})")
    valid = engine_names(config)
    bad = [e for e in engines if e not in valid]
    if bad:
        raise ConfigError(f"unknown selection engine(s) {bad}; valid under this config: {valid}")
    cache = cache if cache is not None else FeatureCache()
    view = views[0]
    out: dict[str, SelectionResult] = {}
    v4_like = [e for e in engines if e != LEGACY]
    ctx = parts = None
    if v4_like:
        ctx = cache.prepared(view, config)
        # the champion always runs: `random` sizes its draw on it, and every pass (synthesis included)
        # must record an event even when only `raw` was asked for
        scorers = [CHAMPION]
        scorers += [e.split(":", 1)[1] for e in engines if e.startswith("v4:")]
        ctx = select(ctx, list(dict.fromkeys(scorers)))
        parts = result_parts(ctx)  # what every engine's result reads alike, computed once
        for e in engines:
            if e == "v4":
                out[e] = v4_result(ctx, "v4", CHAMPION, parts)
            elif e.startswith("v4:"):
                out[e] = v4_result(ctx, e, e.split(":", 1)[1], parts)
            elif e == "raw":
                out[e] = raw_result(ctx, parts)
            elif e == "random":
                out[e] = random_result(ctx, len(ctx.winners[CHAMPION].winners), seeds[0], parts)
    if LEGACY in engines:
        from selection.legacy.engine import run_v34  # lazy import (see module docstring)

        out[LEGACY] = run_v34(view, legacy_config(config), cache.null_cache)
    found = [{e: out[e] for e in engines}]
    for v, seed in zip(views[1:], seeds[1:]):
        twin = {}
        for e in engines:
            if e == "random":
                twin[e] = random_result(ctx.model_copy(update={"view": v}),
                                        len(ctx.winners[CHAMPION].winners), seed, parts)
            else:
                twin[e] = out[e].model_copy(update={"window": v.window.index})
        found.append(twin)
    return found
