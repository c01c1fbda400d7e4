"""``allocation_request`` from the unit's shared panel (``unit_panel``) against the per-engine
sub-panel computation it replaced (e53a33c): the same frames bit for bit (values, index, columns
with their dtype and name) for every engine of several windows of a small run."""
from __future__ import annotations

import dataclasses

import pandas as pd

from contracts.allocation import AllocationRequest
from market.gates import atom_returns
from market.panel import simple_returns
from market.view import PastView
from selection.registry import FeatureCache, run_window
from tests.tournament.conftest import small_config
from tournament.market_io import load_market
from tournament.run import schedules
from tournament.unit import UnitContext, allocation_request, unit_panel


def _reference(view: PastView, sel, periods_per_year: int) -> AllocationRequest:
    """The per-engine computation before the shared panel (columns taken out of the wide panel)."""
    atoms = sel.atoms
    train = slice(view.window.train_start, view.window.cutoff + 1)
    symbols = sorted({x.symbol for x in atoms})
    closes = view.closes[symbols]
    a = atom_returns(closes, atoms, gap=view.window.gap).iloc[train]
    assets = simple_returns(closes).iloc[train] if symbols else None
    bench = None
    if view.benchmark is not None:
        bench = simple_returns(view.closes[[view.benchmark]]).iloc[train][view.benchmark]
    return AllocationRequest(atoms=atoms, atom_returns=a, asset_returns=assets, benchmark_returns=bench,
                             shrinkage=sel.shrinkage, periods_per_year=periods_per_year)


def _same_frame(x, y) -> None:
    if x is None or y is None:
        assert x is None and y is None
        return
    pd.testing.assert_frame_equal(x, y, check_exact=True, check_freq=True)
    assert x.columns.dtype == y.columns.dtype and x.columns.name == y.columns.name
    assert x.index.name == y.index.name


def test_requests_from_the_unit_panel_equal_the_per_engine_sub_panels():
    cfg = small_config()
    market = load_market(cfg.market)
    ctx = UnitContext(market=market, config=cfg)
    setting = cfg.settings()[0]
    windows = schedules(cfg, len(market.closes))[setting.id]
    cache = FeatureCache()
    n_atoms = 0
    for w in (windows[0], windows[len(windows) // 2], windows[-1]):
        view = PastView.at(market.closes, market.snapshots, w, market.calendar, market.benchmark)
        view = dataclasses.replace(view, pool=ctx.pool_as_of(view))
        sels = run_window(view, list(cfg.engines), cfg.selection, 7, cache)
        panel = unit_panel(view)
        for engine, sel in sels.items():
            got = allocation_request(view, sel, market.calendar.periods_per_year, panel)
            ref = _reference(view, sel, market.calendar.periods_per_year)
            _same_frame(got.atom_returns, ref.atom_returns)
            _same_frame(got.asset_returns, ref.asset_returns)
            if ref.benchmark_returns is None:
                assert got.benchmark_returns is None
            else:
                pd.testing.assert_series_equal(got.benchmark_returns, ref.benchmark_returns, check_exact=True)
            n_atoms += len(sel.atoms)
        empty = next(iter(sels.values())).model_copy(update={"atoms": []})
        got = allocation_request(view, empty, market.calendar.periods_per_year, panel)
        ref = _reference(view, empty, market.calendar.periods_per_year)
        _same_frame(got.atom_returns, ref.atom_returns)
        assert got.asset_returns is None and ref.asset_returns is None
    assert n_atoms > 0


def test_streams_shared_by_engines_are_keyed_by_symbol_logic_and_direction():
    """A unit's engines share the streams they request (``UnitPanel.streams``): atoms of one symbol
    with another logic or direction, requested after it, must get their own streams, equal to the
    separate computation; an atom held by two engines is computed once."""
    from contracts.enums import Direction, Logic

    cfg = small_config()
    market = load_market(cfg.market)
    ctx = UnitContext(market=market, config=cfg)
    w = schedules(cfg, len(market.closes))[cfg.settings()[0].id][-1]
    view = PastView.at(market.closes, market.snapshots, w, market.calendar, market.benchmark)
    view = dataclasses.replace(view, pool=ctx.pool_as_of(view))
    sel = next(s for s in run_window(view, ["v4"], cfg.selection, 7, FeatureCache()).values() if s.atoms)
    a = sel.atoms[0]
    variants = [a.model_copy(update={"id": f"{a.identity}_{lg.value}_{d.value}", "logic": lg, "direction": d})
                for lg in Logic for d in (Direction.LONG, Direction.SHORT)]
    panel = unit_panel(view)
    first = allocation_request(view, sel.model_copy(update={"atoms": [a]}), 365, panel)
    n_cached = len(panel.streams)
    mixed = sel.model_copy(update={"atoms": variants})
    got = allocation_request(view, mixed, 365, panel)
    ref = _reference(view, mixed, 365)
    _same_frame(got.atom_returns, ref.atom_returns)
    assert got.atom_returns.nunique(axis=0).gt(0).all()
    assert len(panel.streams) == n_cached + len(variants) - 1  # `a` itself was cached by the first request
    _same_frame(first.atom_returns, _reference(view, sel.model_copy(update={"atoms": [a]}), 365).atom_returns)
