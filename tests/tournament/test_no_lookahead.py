"""No look-ahead, proven by perturbation: change every price and every scanner snapshot after a
cut-off; every engine's selection, every profile's weights, the gates and the simulated returns up
to that cut-off are unchanged, byte for byte."""
import dataclasses

import numpy as np
import pandas as pd

from contracts.enums import SimulatorKind
from market.gates import atom_gates
from market.loaders import MarketData
from market.snapshots import SnapshotStore
from simulation import CellPlan, SimulationConfig, WindowPlan, simulate
from tests.tournament.conftest import small_config
from tournament.market_io import load_market
from tournament.run import schedules
from tournament.unit import UnitContext, UnitKey, alloc_key, run_unit


def _perturb(market, cutoff_bar: int):
    closes = market.closes.copy()
    rng = np.random.default_rng(99)
    after = closes.index > closes.index[cutoff_bar]
    noise = np.exp(rng.normal(0, 0.2, closes.loc[after].shape))
    closes.loc[after] = closes.loc[after].to_numpy() * noise
    fields = {k: v.copy() for k, v in market.data.fields.items()}
    for v in fields.values():
        v.loc[after] = v.loc[after].to_numpy() * 1.7
    frames = {}
    for d, f in market.snapshots.frames.items():
        g = f.copy()
        if d > closes.index[cutoff_bar]:
            g["Recommend.All"] = -g["Recommend.All"]
            g["Value.Traded"] = g["Value.Traded"] * 0.01
            g = g.iloc[::-1].reset_index(drop=True)
        frames[d] = g
    # a snapshot dated after the cut-off that adds a new candidate must not be seen either
    data = MarketData(closes=closes, fields=fields, source="perturbed")
    snaps = SnapshotStore(frames=frames, point_in_time=True, source="perturbed")
    return dataclasses.replace(market, data=data, snapshots=snaps)


def test_every_engine_and_profile_ignores_the_future():
    cfg = small_config(profiles=["equal_weight", "min_variance", "hrp", "max_sharpe", "market_neutral", "barbell"])
    market = load_market(cfg.market)
    setting = cfg.settings()[0]
    windows = schedules(cfg, len(market.closes))[setting.id]
    w0, w1 = windows[0], windows[1]
    cut = w1.cutoff
    other = _perturb(market, cut)
    assert not other.closes.equals(market.closes)
    res, res_p = {}, {}
    for w in (w0, w1):
        key = UnitKey(setting, w)
        a = run_unit(UnitContext(market=market, config=cfg), key).to_json()
        b = run_unit(UnitContext(market=other, config=cfg), key).to_json()
        a.pop("seconds"), b.pop("seconds")
        for k in list(a["allocations"]):  # cache statistics are execution, not decisions
            a["allocations"][k]["diagnostics"].pop("cache_hits", None)
            b["allocations"][k]["diagnostics"].pop("cache_hits", None)
            a["allocations"][k]["diagnostics"].pop("cache_misses", None)
            b["allocations"][k]["diagnostics"].pop("cache_misses", None)
        assert a == b, f"window {w.index}: a decision changed when only the future changed"
        res[w.index], res_p[w.index] = a, b
    # gates of every selected atom up to the cut-off + 1 (g_{c+1} is decided at c)
    from contracts.selection import SelectionResult
    atoms = [x for e in cfg.engines for x in SelectionResult.model_validate(res[1]["selections"][e]).atoms]
    atoms = list({a.id: a for a in atoms}.values())
    ga = atom_gates(market.closes, atoms).iloc[: cut + 2]
    gb = atom_gates(other.closes, atoms).iloc[: cut + 2]
    pd.testing.assert_frame_equal(ga, gb, check_exact=True)
    # returns up to the cut-off: the first window's test bars (c0+1 .. c1)
    for kind in (SimulatorKind.REFERENCE, SimulatorKind.VECTORBT):
        outs = []
        for mk, r in ((market, res), (other, res_p)):
            plans = []
            for e in cfg.engines:
                wps = []
                for w in (w0, w1):
                    sel = SelectionResult.model_validate(r[w.index]["selections"][e])
                    wts = r[w.index]["allocations"][alloc_key(e, "min_variance", "native")]["weights"]
                    wps.append(WindowPlan(window=w, atoms=sel.atoms, weights=wts))
                plans.append(CellPlan(cell_id=e, windows=wps))
            out = simulate(mk.closes, plans, kind, SimulationConfig())
            ret = out.returns
            outs.append(ret[ret["date"] <= market.closes.index[cut]].reset_index(drop=True))
        assert len(outs[0]) == len(cfg.engines) * w0.n_test
        pd.testing.assert_frame_equal(outs[0], outs[1], check_exact=True)
