"""The sleeves' out-of-sample returns (issue 17): a reused cell of the run, or a walk-forward of its own.

``sleeve_returns(cfg, market, main_returns)`` gives one ``SleeveRun`` per ``sleeves:`` entry:

- ``source: run`` whose configuration is a cell of the run (engine and profile in the run, base setting,
  trial backend, the sleeve's simulator): that cell's daily returns from the run's simulation, reused
  as they are (``reused=True``, ``cell_id`` = the run's cell);
- anything else: the sleeve's market (the run's, a synthetic universe from its seed and calendar, or a
  user's folder) walked forward with the run's own code: ``tournament.run.schedules`` (base setting,
  ``max_windows``, gap, train mode of the run), ``tournament.unit.run_unit`` (one engine, one profile,
  the native backend) and ``simulation.simulate`` with the run's costs and liquidation floor on the
  sleeve's calendar. Its cell id is ``CellKey(engine="sleeve:<name>", ...)`` of those dimensions.

Returns are daily simple returns on the sleeve's own trading days (fractions, net of its costs).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from contracts.cell import CellKey
from contracts.enums import Backend, SimulatorKind
from simulation import CellPlan, SimulationConfig, WindowPlan, simulate
from tournament.config import DataSpec, Sweeps, TournamentConfig
from tournament.market_io import Market, load_market
from tournament.meta_config import SleeveSpec
from tournament.unit import UnitContext, UnitKey, alloc_key, run_unit


@dataclass
class SleeveRun:
    """One sleeve's out-of-sample result on its own calendar."""

    spec: SleeveSpec
    cell: CellKey
    reused: bool
    calendar: str                     # crypto (7-day) or exchange (weekdays)
    returns: pd.Series                # own trading days, UTC dates
    windows: pd.Series                # the sleeve's window index per date
    liquidated: pd.Series             # its simulation's liquidated flag per date
    summary: dict = field(default_factory=dict)   # sim_* of its own simulation (own calendar)
    #: a walked-forward sleeve's decisions (weights.parquet columns; empty for a reused cell, whose
    #: decisions are the run's own weights.parquet rows)
    weights: pd.DataFrame = field(default_factory=pd.DataFrame)
    provenance: dict = field(default_factory=dict)

    @property
    def cell_id(self) -> str:
        return self.cell.id


def series_sha256(r: pd.Series) -> str:
    """SHA-256 of a return series' dates (ns since epoch, int64) and values (float64) bytes."""
    h = hashlib.sha256(np.asarray(r.index.asi8, dtype="<i8").tobytes())
    h.update(np.asarray(r.to_numpy(), dtype="<f8").tobytes())
    return h.hexdigest()


def reuse_key(cfg: TournamentConfig, spec: SleeveSpec) -> CellKey:
    """The run's cell a ``source: run`` sleeve reuses when the run has it."""
    b = cfg.settings()[0]
    return CellKey(engine=spec.engine, profile=spec.profile, backend=cfg.trial_backend, simulator=spec.simulator,
                   step_size=b.step_size, train_window=b.train_window, feature_lookback=b.feature_lookback)


def filter_pool(m: Market, spec: SleeveSpec) -> Market:
    """``m`` with every snapshot restricted to the sleeve's ``asset_types`` / ``exchanges`` / ``sectors``
    (``DataError`` naming the sleeve when nothing is left)."""
    import dataclasses

    from contracts.errors import DataError
    from market.snapshots import SnapshotStore

    if not spec.filtered:
        return m
    frames = {}
    for d, f in m.snapshots.frames.items():
        keep = np.ones(len(f), dtype=bool)
        for col, vals in (("asset_type", spec.asset_types), ("exchange", spec.exchanges), ("sector", spec.sectors)):
            if vals is not None:
                keep &= f[col].astype(str).isin(vals).to_numpy()
        frames[d] = f.loc[keep].reset_index(drop=True)
    if not any(len(f) for f in frames.values()):
        raise DataError(f"sleeve {spec.name!r}: no candidate left after its filter (asset_types="
                        f"{spec.asset_types}, exchanges={spec.exchanges}, sectors={spec.sectors})")
    snaps = SnapshotStore(frames=frames, point_in_time=m.snapshots.point_in_time,
                          source=f"{m.snapshots.source} (sleeve {spec.name} filter)")
    return dataclasses.replace(m, snapshots=snaps, provenance={**m.provenance, "sleeve_filter": {
        "asset_types": spec.asset_types, "exchanges": spec.exchanges, "sectors": spec.sectors}})


def sleeve_market(cfg: TournamentConfig, market: Market, spec: SleeveSpec, derived_cache=None) -> Market:
    """The market a sleeve walks forward on (bad input raises naming the sleeve's fields)."""
    if spec.source == "run":
        return filter_pool(market, spec)
    if spec.source == "synthetic":
        ds = DataSpec(calendar=spec.calendar or market.calendar.name, synthetic_seed=spec.synthetic_seed,
                      synthetic_bars=cfg.market.synthetic_bars,
                      synthetic_candidates=spec.synthetic_candidates or cfg.market.synthetic_candidates,
                      synthetic_no_signal=cfg.market.synthetic_no_signal)  # a no-signal run: no-signal sleeves
    else:
        ds = DataSpec(data=spec.data, candidates=spec.candidates, calendar=spec.calendar, benchmark=spec.benchmark)
    return filter_pool(load_market(ds, derived_cache=derived_cache), spec)


def walk_forward(cfg: TournamentConfig, m: Market, spec: SleeveSpec
                 ) -> tuple[CellKey, pd.DataFrame, dict, pd.DataFrame]:
    """Walk one sleeve forward on market ``m``: its returns frame (returns.parquet columns), summary and
    per-window weights (weights.parquet columns)."""
    from tournament.run import schedules

    sub = TournamentConfig.model_validate({
        **cfg.model_dump(mode="json"), "engines": [spec.engine], "profiles": [spec.profile.value],
        "backends": [Backend.NATIVE.value], "simulators": [spec.simulator.value],
        "sweeps": Sweeps().model_dump(), "sleeves": [], "meta": None, "report": False,
        "max_windows": spec.max_windows or cfg.max_windows})
    base = sub.settings()[0]
    windows = schedules(sub, len(m.closes))[base.id]
    ctx = UnitContext(market=m, config=sub)
    akey = alloc_key(spec.engine, spec.profile, Backend.NATIVE)
    wps = []
    for w in windows:
        res = run_unit(ctx, UnitKey(base, w))
        wps.append(WindowPlan(window=w, atoms=res.selections[spec.engine].atoms,
                              weights=dict(res.allocations[akey].weights)))
    cell = CellKey(engine=f"sleeve:{spec.name}", profile=spec.profile, backend=Backend.NATIVE,
                   simulator=spec.simulator, **base.model_dump())
    sim_cfg = SimulationConfig(fees=cfg.costs.fees, slippage=cfg.costs.slippage,
                               liquidation_floor=cfg.liquidation_floor,
                               periods_per_year=m.calendar.periods_per_year, gap=cfg.gap)
    out = simulate(m.closes, [CellPlan(cell_id=cell.id, windows=wps)], SimulatorKind(spec.simulator), sim_cfg)
    summary = out.summary.set_index("cell_id").loc[cell.id].to_dict()
    rows = []
    for wp in wps:
        by_id = {a.id: a for a in wp.atoms}
        for aid, w in sorted(wp.weights.items()):
            rows.append((cell.id, wp.window.index, aid, by_id[aid].symbol, by_id[aid].direction.value, float(w)))
    weights = pd.DataFrame(rows, columns=["cell_id", "window", "atom_id", "symbol", "direction", "weight"])
    return cell, out.returns, {**summary, "n_windows": len(wps)}, weights


def walked_sleeves(cfg: TournamentConfig) -> list[SleeveSpec]:
    """The sleeves walked forward whatever the run's returns (every one but a ``source: run`` sleeve
    whose cell the run has): ``sleeve_task`` can walk them while the units run (issue 23)."""
    ids = {c.id for c in cfg.cells()}
    return [s for s in cfg.sleeves if not (s.source == "run" and not s.filtered and reuse_key(cfg, s).id in ids)]


def walk_sleeve(cfg: TournamentConfig, market: Market, spec: SleeveSpec, derived_cache=None) -> SleeveRun:
    """One sleeve walked forward on its own market (``sleeve_market``, ``walk_forward``)."""
    m = sleeve_market(cfg, market, spec, derived_cache)
    cell, frame, summary, weights = walk_forward(cfg, m, spec)
    prov = {k: m.provenance.get(k) for k in ("source", "seed", "panel_sha256", "calendar", "first_date",
                                              "last_date", "n_symbols", "sleeve_filter")}
    return _sleeve_run(spec, cell, False, m, frame, summary, weights, prov)


def sleeve_task(ctx, spec: SleeveSpec) -> SleeveRun:
    """``walk_sleeve`` of ``spec`` on a worker (``executors.Session.submit``): the run's config and
    market from the worker's context, the derived fields from the run's cache folder."""
    from market.ratings import DerivedCache
    from tournament.run import cache_dir

    return walk_sleeve(ctx.config, ctx.market, spec, DerivedCache(cache_dir() / "derived"))


def _sleeve_run(spec: SleeveSpec, cell: CellKey, reused: bool, m: Market, frame: pd.DataFrame, summary: dict,
                weights: pd.DataFrame, prov: dict) -> SleeveRun:
    idx = pd.DatetimeIndex(frame["date"])
    r = pd.Series(frame["return"].to_numpy(dtype=np.float64), index=idx, name=spec.name)
    wins = pd.Series(frame["window"].to_numpy(dtype=np.int64), index=idx)
    liq = pd.Series(frame["liquidated"].to_numpy(dtype=bool), index=idx)
    return SleeveRun(spec=spec, cell=cell, reused=reused, calendar=m.calendar.name, returns=r,
                     windows=wins, liquidated=liq, summary=summary, weights=weights,
                     provenance={**prov, "benchmark": m.benchmark, "periods_per_year": m.calendar.periods_per_year})


def sleeve_returns(cfg: TournamentConfig, market: Market, main_returns: pd.DataFrame,
                   derived_cache=None, walked: dict[str, SleeveRun] | None = None) -> list[SleeveRun]:
    """Every sleeve's OOS returns (reused or walked forward), in config order. ``walked``: sleeves
    already walked forward (``sleeve_task``), by name; the others are walked here."""
    have = set(main_returns["cell_id"].astype(str).unique())
    out = []
    for spec in cfg.sleeves:
        key = reuse_key(cfg, spec)
        if spec.source == "run" and not spec.filtered and key.id in have:
            g = main_returns[main_returns["cell_id"] == key.id].sort_values("date")
            prov = {"source": "run", "panel_sha256": market.provenance.get("panel_sha256")}
            out.append(_sleeve_run(spec, key, True, market, g, {}, pd.DataFrame(), prov))
        elif walked is not None and spec.name in walked:
            out.append(walked[spec.name])
        else:
            out.append(walk_sleeve(cfg, market, spec, derived_cache))
    return out
