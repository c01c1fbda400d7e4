"""Small builders for simulation tests: panels, atoms, plans (every random draw takes a seed)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from contracts import Direction, Logic, StrategyAtom
from simulation import CellPlan, WindowPlan, make_windows


def panel(n_bars: int, n_sym: int, seed: int, vol: float = 0.03) -> pd.DataFrame:
    """Geometric random walk closes, UTC daily index, symbols S0..S{n-1}."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0, vol, size=(n_bars, n_sym))
    px = 100.0 * np.exp(np.cumsum(r, axis=0))
    idx = pd.date_range("2021-01-01", periods=n_bars, freq="D", tz="UTC")
    return pd.DataFrame(px, index=idx, columns=[f"S{i}" for i in range(n_sym)])


def atom(symbol: str, logic: str = "rating", direction: str = "LONG", cluster: int = 0) -> StrategyAtom:
    return StrategyAtom(id=StrategyAtom.make_id(symbol, logic, direction), symbol=symbol, identity=symbol,
                        direction=Direction(direction), logic=Logic(logic), cluster=cluster)


def fixed_plan(cell_id: str, n_bars: int, train: int, step: int, atoms_w: list[tuple[StrategyAtom, float]],
               gap: int = 1) -> CellPlan:
    """The same atoms and weights in every window."""
    wins = make_windows(n_bars, train, step, gap=gap)
    return CellPlan(cell_id=cell_id, windows=[
        WindowPlan(window=w, atoms=[a for a, _ in atoms_w], weights={a.id: x for a, x in atoms_w}) for w in wins])


def random_plan(cell_id: str, closes: pd.DataFrame, train: int, step: int, n_atoms: int, seed: int,
                gap: int = 1) -> CellPlan:
    """Random atoms (any logic, both directions, several per asset allowed) and Dirichlet weights."""
    rng = np.random.default_rng(seed)
    syms = list(closes.columns)
    wins = make_windows(len(closes), train, step, gap=gap)
    out = []
    for w in wins:
        atoms: dict[str, StrategyAtom] = {}
        while len(atoms) < n_atoms:
            a = atom(syms[rng.integers(len(syms))], ["rating", "trend", "mom", "rev"][rng.integers(4)],
                     ["LONG", "SHORT"][rng.integers(2)])
            atoms[a.id] = a
        wt = rng.dirichlet(np.ones(n_atoms))
        out.append(WindowPlan(window=w, atoms=list(atoms.values()),
                              weights={k: float(x) for k, x in zip(atoms, wt)}))
    return CellPlan(cell_id=cell_id, windows=out)


def frame(prices: dict[str, list[float]]) -> pd.DataFrame:
    """A panel from literal price lists (NaN allowed before/after a symbol's prices)."""
    n = len(next(iter(prices.values())))
    idx = pd.date_range("2022-01-01", periods=n, freq="D", tz="UTC")
    return pd.DataFrame({k: np.asarray(v, dtype=np.float64) for k, v in prices.items()}, index=idx)


def single_window_plan(cell_id: str, n_bars: int, atoms_w, train: int = 3, gap: int = 1) -> CellPlan:
    """One window: cut-off bar ``train-1``, test bars up to the last bar of the panel."""
    step = n_bars - train
    return fixed_plan(cell_id, n_bars, train, step, atoms_w, gap=gap)


def returns_of(res, cell_id: str) -> np.ndarray:
    return res.returns.loc[res.returns.cell_id == cell_id, "return"].to_numpy()


def dense_records(target: np.ndarray, col_group: np.ndarray):
    """The order records (row, column, value) of a dense (bars x columns) target (NaN = no order), sorted
    by cell, row, column, as ``simulation.schedule.Batch`` holds them."""
    r, c = np.nonzero(~np.isnan(target))
    key = (np.asarray(col_group)[c] * target.shape[0] + r) * max(target.shape[1], 1) + c
    o = np.argsort(key, kind="stable")
    return r[o].astype(np.int64), c[o].astype(np.int64), target[r[o], c[o]]


def pack_dense(target: np.ndarray, col_group: np.ndarray, n_groups: int, price=None, col_sym=None):
    """``simulation.packing.pack`` of a dense target (price: per column unless ``col_sym`` is given)."""
    from simulation import packing

    price = np.ones(target.shape) if price is None else price
    col_sym = np.arange(target.shape[1]) if col_sym is None else col_sym
    row, col, val = dense_records(target, col_group)
    return packing.pack(target.shape[0], row, col, val, col_group, n_groups, price, col_sym)
