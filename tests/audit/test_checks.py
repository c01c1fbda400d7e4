"""Checks on constructed cases with known answers: mismatch, bands, sign flip, funnel, bankruptcy."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from audit.checks import (
    CheckStatus, SimConventions, VOL_BANDS, band_distance, check_bankruptcy, check_directional,
    check_funnel, check_metric_mismatch, check_volatility_band, summarize_checks,
)
from audit.metrics import max_drawdown, sharpe, total_return
from contracts import Funnel, StrategyAtom
from contracts.enums import Profile

DATES = pd.date_range("2024-01-01", periods=6, freq="D", tz="UTC")


def _atom(identity, direction, logic="mom"):
    return StrategyAtom(id=f"{identity}_{logic}_{direction}", symbol=identity, identity=identity,
                        direction=direction, logic=logic, cluster=0)


# ---- metric mismatch --------------------------------------------------------------------------
def test_mismatch_pass_and_fail_on_convention_slip():
    r = np.random.default_rng(3).normal(0.001, 0.02, 400)
    conv = SimConventions(periods_per_year=365)
    ok = check_metric_mismatch("c1", r, sim_sharpe=sharpe(r, 365) * (1 + 1e-9),
                               sim_max_drawdown=max_drawdown(r), sim_total_return=total_return(r),
                               conventions=conv)
    assert ok.status is CheckStatus.PASS and ok.cell_id == "c1"
    # a simulator that used ddof=0 but states ddof=1: off by sqrt(400/399)-1 = 1.25e-3 relative
    x = r - r.mean()
    sim_sh = r.mean() / math.sqrt(x @ x / 400) * math.sqrt(365)
    bad = check_metric_mismatch("c1", r, sim_sharpe=sim_sh, sim_max_drawdown=max_drawdown(r),
                                sim_total_return=total_return(r), conventions=conv)
    assert bad.status is CheckStatus.FAIL
    assert not bad.details["metrics"]["sharpe"]["ok"] and bad.details["metrics"]["max_drawdown"]["ok"]
    # ...and passes when it states ddof=0
    stated = check_metric_mismatch("c1", r, sim_sharpe=sim_sh, sim_max_drawdown=max_drawdown(r),
                                   sim_total_return=total_return(r),
                                   conventions=SimConventions(periods_per_year=365, sharpe_ddof=0))
    assert stated.status is CheckStatus.PASS


def test_mismatch_under_drawdown_convention_without_initial_capital():
    r = np.array([-0.1, 0.05, -0.02, 0.03])
    sim_mdd = max_drawdown(r, include_initial_capital=False)  # 0.9261/0.945 - 1
    conv = SimConventions(periods_per_year=252, drawdown_includes_initial_capital=False)
    res = check_metric_mismatch("c", r, sim_sharpe=sharpe(r, 252), sim_max_drawdown=sim_mdd,
                                sim_total_return=total_return(r), conventions=conv)
    assert res.status is CheckStatus.PASS
    res2 = check_metric_mismatch("c", r, sim_sharpe=sharpe(r, 252), sim_max_drawdown=sim_mdd,
                                 sim_total_return=total_return(r),
                                 conventions=SimConventions(periods_per_year=252))
    assert res2.status is CheckStatus.FAIL


def test_mismatch_nan_sim_sharpe_on_flat_series_is_warn():
    r = np.zeros(20)
    res = check_metric_mismatch("c", r, sim_sharpe=float("nan"), sim_max_drawdown=0.0,
                                sim_total_return=0.0, conventions=SimConventions(periods_per_year=365))
    assert res.status is CheckStatus.WARN and res.details["metrics"]["sharpe"]["sim"] is None
    res = check_metric_mismatch("c", np.array([0.01, -0.01]), sim_sharpe=float("nan"),
                                sim_max_drawdown=-0.01, sim_total_return=-0.0001,
                                conventions=SimConventions(periods_per_year=365))
    assert res.status is CheckStatus.FAIL


# ---- volatility bands --------------------------------------------------------------------------
def test_band_table_and_distance():
    assert VOL_BANDS[Profile.HRP] == (0.45, 0.50) and VOL_BANDS[Profile.MAX_SHARPE] == (0.9, 0.9)
    assert band_distance(0.47, (0.45, 0.50)) == 0.0
    assert band_distance(0.40, (0.45, 0.50)) == pytest.approx(0.05)
    assert band_distance(0.80, (0.45, 0.50)) == pytest.approx(0.30)


def _with_vol(target_annual, n, p, seed):
    z = np.random.default_rng(seed).standard_normal(n)
    z = (z - z.mean()) / z.std(ddof=1)  # sample std exactly 1
    return z * target_annual / math.sqrt(p)


def test_band_breach_is_drift():
    r = _with_vol(0.95, 200, 365, 1)  # min_variance band 0.35: distance 0.60 > 0.25
    res = check_volatility_band("c", "min_variance", r, 365, windows=np.repeat([0, 1], 100))
    assert res.status is CheckStatus.WARN and res.details["flag"] == "DRIFT"
    assert res.details["realised_vol"] == pytest.approx(0.95, rel=1e-12)
    assert res.details["distance"] == pytest.approx(0.60, rel=1e-12)
    assert set(res.details["per_window"]) == {"0", "1"}


def test_inside_tolerance_not_flagged_and_per_window_reported():
    r = np.concatenate([_with_vol(0.10, 50, 252, 2), _with_vol(2.0, 50, 252, 3)])
    res = check_volatility_band("c", Profile.MAX_SHARPE, _with_vol(0.70, 100, 252, 4), 252,
                                windows=np.repeat([0, 1], 50))
    assert res.status is CheckStatus.PASS and res.details["distance"] == pytest.approx(0.20)
    res2 = check_volatility_band("c", Profile.HRP, _with_vol(0.48, 100, 252, 5), 252)
    assert res2.details["distance"] == 0.0 and res2.details["per_window"] == {}
    # a single wild window is reported, never flagged on its own
    res3 = check_volatility_band("c", "barbell", r, 252, windows=np.repeat([0, 1], 50))
    assert res3.details["per_window"]["1"] == pytest.approx(2.0, rel=1e-12)


# ---- directional trace ---------------------------------------------------------------------------
def _weights(rows):
    return pd.DataFrame(rows, columns=["cell_id", "window", "atom_id", "symbol", "direction",
                                       "weight"])


def _positions(rows):
    df = pd.DataFrame(rows, columns=["cell_id", "date", "atom_id", "symbol", "units", "trade",
                                     "cost"])
    df["date"] = pd.to_datetime(df["date"], utc=True)
    return df


ATOMS = {0: [_atom("BTC", "LONG"), _atom("ETH", "SHORT")]}
W_OK = _weights([["c1", 0, "BTC_mom_LONG", "BTC", "LONG", 0.6],
                 ["c1", 0, "ETH_mom_SHORT", "ETH", "SHORT", 0.4]])
P_OK = [["c1", "2024-01-02", "BTC_mom_LONG", "BTC", 0.01, 0.01, 1e-4],
        ["c1", "2024-01-02", "ETH_mom_SHORT", "ETH", -0.2, -0.2, 1e-4],
        ["c1", "2024-01-03", "ETH_mom_SHORT", "ETH", 0.0, 0.2, 1e-4]]


def test_directional_pass():
    res = check_directional("c1", ATOMS, W_OK, _positions(P_OK))
    assert res.status is CheckStatus.PASS and res.details["n_short_atoms_traced"] == 1


def test_sign_flip_in_positions_caught():
    rows = P_OK + [["c1", "2024-01-04", "ETH_mom_SHORT", "ETH", 0.05, 0.05, 1e-4],
                   ["c2", "2024-01-04", "ETH_mom_SHORT", "ETH", 9.0, 9.0, 0.0]]  # other cell
    res = check_directional("c1", ATOMS, W_OK, _positions(rows))
    assert res.status is CheckStatus.FAIL and res.details["n_violations"] == 1
    v = res.details["violations"][0]
    assert v["stage"] == "positions" and v["atom_id"] == "ETH_mom_SHORT" and "0.05" in v["issue"]


def test_sign_flip_in_weights_caught():
    w = W_OK.copy()
    w.loc[1, "direction"] = "LONG"
    res = check_directional("c1", ATOMS, w, _positions(P_OK))
    assert res.status is CheckStatus.FAIL
    assert res.details["violations"][0]["stage"] == "weights"
    w2 = W_OK.copy()
    w2.loc[1, "weight"] = -0.4
    assert check_directional("c1", ATOMS, w2, _positions(P_OK)).status is CheckStatus.FAIL


def test_position_in_unallocated_atom_caught():
    rows = P_OK + [["c1", "2024-01-04", "SOL_mom_SHORT", "SOL", -1.0, -1.0, 0.0]]
    res = check_directional("c1", ATOMS, W_OK, _positions(rows))
    assert res.status is CheckStatus.FAIL and "never allocated" in res.details["violations"][0]["issue"]


def _directional_loop(cell_id, atoms_by_window, w, pos):
    """The row-by-row definition (the check's first version), as the oracle of the vectorised one."""
    w, pos = w[w.cell_id == cell_id], pos[pos.cell_id == cell_id]
    direction, out = {}, []
    for atoms in atoms_by_window.values():
        for a in atoms:
            direction.setdefault(a.id, a.direction)
    selected = {int(k): {a.id: a.direction for a in atoms} for k, atoms in atoms_by_window.items()}
    for row in w.itertuples(index=False):
        sel = selected.get(int(row.window), {})
        if row.atom_id not in sel:
            out.append(("weights", row.atom_id, "atom not in the window's selection"))
            continue
        if row.direction != sel[row.atom_id].value:
            out.append(("weights", row.atom_id, f"direction {row.direction} != selected {sel[row.atom_id].value}"))
        if not row.weight >= -1e-10:
            out.append(("weights", row.atom_id, f"negative weight {float(row.weight)!r}"))
    allocated = set(w.atom_id)
    for row in pos.itertuples(index=False):
        d = direction.get(row.atom_id)
        if d is None or row.atom_id not in allocated:
            out.append(("positions", row.atom_id, "position in an atom never allocated to the cell"))
        elif (d.value == "SHORT" and row.units > 0) or (d.value == "LONG" and row.units < 0):
            out.append(("positions", row.atom_id, f"{d.value} atom holds units {float(row.units)!r}"))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_directional_vectorised_equals_row_loop(seed):
    rng = np.random.default_rng(seed)
    syms = ["BTC", "ETH", "SOL", "ADA", "XRP"]
    atoms = {k: [_atom(s, "SHORT" if rng.random() < 0.5 else "LONG") for s in rng.choice(syms, 3, replace=False)]
             for k in range(4)}
    wrows, prows = [], []
    for k, lst in atoms.items():
        for a in lst:
            d = a.direction.value if rng.random() > 0.1 else ("LONG" if a.direction.value == "SHORT" else "SHORT")
            wrows.append(["c1", k, a.id, a.symbol, d, float(rng.choice([0.3, -0.2]) if rng.random() < 0.1 else 0.3)])
            for t in range(3):
                sign = -1.0 if a.direction.value == "SHORT" else 1.0
                u = sign * rng.random() * (-1.0 if rng.random() < 0.05 else 1.0)
                prows.append(["c1", f"2024-01-{k * 3 + t + 1:02d}", a.id, a.symbol, u, u, 0.0])
    wrows.append(["c1", 2, "DOGE_mom_LONG", "DOGE", "LONG", 0.1])          # never selected
    prows.append(["c1", "2024-02-01", "DOT_mom_SHORT", "DOT", -1.0, -1.0, 0.0])  # never allocated
    prows.append(["c2", "2024-02-01", "BTC_mom_LONG", "BTC", -5.0, 0.0, 0.0])   # another cell
    w, pos = _weights(wrows), _positions(prows)
    res = check_directional("c1", atoms, w, pos)
    got = [(v["stage"], v["atom_id"], v["issue"]) for v in res.details["violations"]
           if v["stage"] != "selection"]
    assert got == _directional_loop("c1", atoms, w, pos)[:len(got)] and len(got) > 2


# ---- funnel -------------------------------------------------------------------------------------
def _funnel(**kw):
    base = dict(snapshot=10, deduplicated=8, after_hard_vetoes=5, after_all_vetoes_stage1=3,
                winners_by_stage={1: 2, 2: 1}, n_clusters=2)
    return Funnel(**{**base, **kw})


def test_funnel_pass_and_failures():
    pool = ["a", "b", "c", "d", "e"]
    ok = check_funnel(3, _funnel(), ["a", "b", "c"], pool, engine="v4")
    assert ok.status is CheckStatus.PASS and ok.window == 3
    outside = check_funnel(3, _funnel(), ["a", "b", "z"], pool)
    assert outside.status is CheckStatus.FAIL and outside.details["outside_pool"] == ["z"]
    rising = check_funnel(3, _funnel(deduplicated=12), ["a", "b", "c"], pool)
    assert rising.status is CheckStatus.FAIL
    assert rising.details["errors"] == ["deduplicated (12) > snapshot (10)"]


# ---- zero bankruptcy ----------------------------------------------------------------------------
def _returns_frame(cells):
    rows = []
    for cell, (rets, liq) in cells.items():
        for i, (r, l) in enumerate(zip(rets, liq)):
            rows.append([cell, DATES[i], i // 3, r, l])
    return pd.DataFrame(rows, columns=["cell_id", "date", "window", "return", "liquidated"])


def test_liquidation_named_with_date_and_window():
    df = _returns_frame({
        "alive": ([0.01, -0.02, 0.0, 0.03, 0.01, -0.01], [False] * 6),
        "dead": ([0.05, -0.2, 0.1, -1.0, 0.0, 0.0], [False, False, False, True, True, True]),
    })
    res = {r.cell_id: r for r in check_bankruptcy(df)}
    assert res["alive"].status is CheckStatus.PASS and res["alive"].details["n_windows"] == 2
    dead = res["dead"]
    assert dead.status is CheckStatus.FAIL and dead.details["liquidated_window"] == 1
    assert dead.details["liquidated_date"] == "2024-01-04T00:00:00+00:00"
    assert dead.details["inconsistencies"] == []
    summary = summarize_checks(res.values())
    assert not summary["ok"] and summary["failures"] == [
        {"name": "zero_bankruptcy", "cell_id": "dead", "window": None}]
    assert summary["by_status"] == {"pass": 1, "fail": 1, "warn": 0}


def test_unflagged_ruin_and_life_after_death_are_inconsistent():
    df = _returns_frame({"x": ([0.1, -1.0, 0.0, 0.0, 0.0, 0.0], [False] * 6),
                         "y": ([0.1, -1.0, 0.0, 0.5, 0.0, 0.0], [False, True, True, True, False,
                                                                  False])})
    res = {r.cell_id: r for r in check_bankruptcy(df)}
    assert res["x"].status is CheckStatus.FAIL and "without the flag" in \
        res["x"].details["inconsistencies"][0]
    assert res["x"].details["liquidated_date"] == "2024-01-02T00:00:00+00:00"
    assert set(res["y"].details["inconsistencies"]) == {
        "liquidated flag cleared after liquidation", "nonzero return after liquidation"}


def test_check_result_is_a_ledger_record(tmp_path):
    from audit.ledger import LedgerWriter
    from audit.verify import verify_ledger
    res = check_volatility_band("c", "hrp", _with_vol(0.5, 30, 365, 9), 365)
    with LedgerWriter(tmp_path, "r") as w:
        rec = w.append("check", "run", res.to_ledger_data())
    assert rec["data"]["name"] == "volatility_band" and rec["data"]["status"] == "pass"
    assert verify_ledger(tmp_path).ok
