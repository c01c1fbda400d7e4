"""Compile cell plans into the order schedule both simulators execute (DESIGN section 3).

One column per (cell, atom id, symbol). ``target[t, j]`` is the signed fraction ``d * g * w`` of the
portfolio's value (at the close of ``t``, before trading) that column ``j`` is set to at the close of bar
``t``; NaN means no order (units are held). Orders are placed:

- at each window's fill bar ``f = c + gap``: every atom of the window is set to ``d * g_{f+1} * w``,
  every atom of the previous window that is not in this one is set to 0;
- at the close of ``t`` (``f < t < `` next fill, or ``t <`` last test bar for the last window) when
  ``g_{t+1} != g_t``: the atom is set to ``d * g_{t+1} * w`` of the value then. A window's atoms follow
  their gates until the next window's fill replaces them (bars ``c+1 .. c+gap`` of the next window are
  earned by these holdings);
- at the last price ``L`` of a symbol that stops trading (NaN after ``L``) inside the cell's range:
  every atom on it is set to 0 (closed at its last price).

No order is placed at a close without a positive price (before listing, after delisting, at and after a
bust to 0): the weight stays in cash. A bust (final price 0) is handled by the simulators: the position
is worth 0 from that bar and is closed at 0. Everything here reads prices only through gates (which use
closes up to ``t-1-gap`` for the bar-``t`` gate) and the listing/delisting bars.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd

from contracts.enums import Direction, Logic
from contracts.errors import ConfigError, DataError
from market.gates import atom_gates
from simulation.config import CellPlan, SimulationConfig


@dataclass(frozen=True)
class Batch:
    """Arrays of one batched simulation over bars ``b0 .. b1`` (inclusive) of the panel.

    Row ``i`` is panel bar ``b0 + i``. Columns are atoms of cells; ``col_group`` maps a column to its cell
    (0-based within the batch).
    """

    b0: int
    dates: pd.DatetimeIndex          # panel dates of bars b0..b1
    sym_price: np.ndarray            # (n, symbols) valuation price per panel symbol (close, ffilled after the
                                     # last price, 0 after a bust): a view of the panel's rows, not a copy
    col_sym: np.ndarray              # (C,) int64 symbol (column of ``sym_price``) of each column
    target: np.ndarray               # (n, C) signed target fraction of value, NaN = no order
    bust_row: np.ndarray             # (C,) row of the bust (final price 0), -1 if none in range
    delist_row: np.ndarray           # (C,) row of the last price of a symbol that stops trading, -1 if none
    col_group: np.ndarray            # (C,) int
    col_atom: list[str]
    col_symbol: list[str]
    col_sign: np.ndarray             # (C,) +1 / -1
    cell_ids: list[str]
    start_row: np.ndarray            # (G,) row of each cell's first cut-off (value 1.0 at its close)
    end_row: np.ndarray              # (G,) row of each cell's last test bar
    window_of_row: list[np.ndarray]  # per cell: window number of rows start_row+1 .. end_row
    n_windows: np.ndarray            # (G,)

    @property
    def shape(self) -> tuple[int, int]:
        return self.target.shape

    def price_matrix(self) -> np.ndarray:
        """(n, C) valuation price of each column (a new array; the vectorbt path gathers only what it
        needs from ``sym_price`` instead)."""
        return np.take(self.sym_price, self.col_sym, axis=1)


# enum member -> value / sign by dict look-up: ``member.value`` goes through a descriptor (~1 us), and
# these run once per atom of every window of every cell (100k times in the simulation benchmark)
_LOGIC_VALUE = {m: m.value for m in Logic}
_DIR_VALUE = {m: m.value for m in Direction}
_DIR_SIGN = {m: m.sign for m in Direction}


def _gate_key(a) -> tuple[str, str, str]:
    """(symbol, logic value, direction value) of an atom: the key of its gate column."""
    lv, dv = _LOGIC_VALUE.get(a.logic), _DIR_VALUE.get(a.direction)
    return (a.symbol, lv if lv is not None else Logic(a.logic).value,
            dv if dv is not None else Direction(a.direction).value)


def check_plans(closes: pd.DataFrame, plans: list[CellPlan], config: SimulationConfig) -> None:
    """Raise ConfigError/DataError naming the cell, window, atom or symbol when plans and panel disagree."""
    seen: set[str] = set()
    n = len(closes)
    columns = set(closes.columns)
    for p in plans:
        if p.cell_id in seen:
            raise ConfigError(f"duplicate cell id {p.cell_id!r}")
        seen.add(p.cell_id)
        if p.end_bar >= n:
            raise DataError(f"cell {p.cell_id}: last test bar {p.end_bar} is beyond the panel's {n} bars")
        for wp in p.windows:
            if wp.window.gap != config.gap:
                raise ConfigError(f"cell {p.cell_id}: window {wp.window.index} has gap {wp.window.gap} "
                                  f"but the simulation config has gap {config.gap}")
            for a in wp.atoms:
                if a.symbol not in columns:
                    raise DataError(f"cell {p.cell_id}: atom {a.id!r} trades symbol {a.symbol!r}, "
                                    "which is not in the panel")


def compute_gates(closes: pd.DataFrame, plans: list[CellPlan], gap: int) -> tuple[np.ndarray, dict]:
    """Gates of every distinct (symbol, logic, direction) in the plans: (bars, K) array and key->column."""
    atoms, keys = [], {}
    seen: set[int] = set()   # atom objects already keyed (plans reuse one object across windows)
    for p in plans:
        for wp in p.windows:
            for a in wp.atoms:
                if id(a) in seen:
                    continue
                seen.add(id(a))
                k = _gate_key(a)
                if k not in keys:
                    keys[k] = len(atoms)
                    atoms.append(a.model_copy(update={"id": f"{len(atoms)}"}, deep=False))
    if not atoms:
        return np.zeros((len(closes), 0)), keys
    g = atom_gates(closes, atoms, gap).to_numpy(dtype=np.float64)
    return g, keys


def panel_arrays(closes: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Valuation prices (bars x symbols), tradable mask, last finite row and bust row per symbol.

    Valuation price: the close, forward-filled after a symbol's last price (0 after a bust) and
    back-filled before its first (no position can exist there: nothing trades without a price).
    """
    raw = closes.to_numpy(dtype=np.float64)
    finite = np.isfinite(raw)
    n = raw.shape[0]
    last = n - 1 - np.argmax(finite[::-1], axis=0)
    val = np.ascontiguousarray(pd.DataFrame(raw).ffill().bfill().to_numpy())  # row-major: rows are gathered
    tradable = np.ascontiguousarray(finite & (raw > 0))
    bust = np.where(finite[last, np.arange(raw.shape[1])] & (raw[last, np.arange(raw.shape[1])] == 0),
                    last, -1)
    return val, tradable, last, bust


@numba.njit(cache=True)
def _cell_targets_nb(target, lo, wk, fills, gates, gate_col, sign, tradable, sym, b0, end_bar):  # pragma: no cover
    """Write one cell's fill and gate-change orders into ``target[:, lo:lo+m]`` (see module docstring).

    ``wk``: (windows, m) weight of each of the cell's columns in each window; ``fills``: fill bar per
    window (increasing); ``gates``: all panel bars x gate keys, ``gate_col``: gate key of each column;
    ``sign``: d per column; ``tradable``: panel bars x symbols, ``sym``: symbol of each column (no order
    where the close is not tradable: the weight stays in cash); ``end_bar``: the cell's last test bar.
    Target = ``(d * w) * g``.
    """
    nk, m = wk.shape
    for k in range(nk):  # fill: set this window's atoms, close the previous window's others
        f = fills[k]
        for j in range(m):
            w = wk[k, j]
            if not tradable[f, sym[j]]:
                continue
            if w > 0.0:
                target[f - b0, lo + j] = sign[j] * w * gates[f + 1, gate_col[j]]
            elif k > 0 and wk[k - 1, j] > 0.0:
                target[f - b0, lo + j] = 0.0
    k = 0
    for t in range(fills[0] + 1, end_bar):  # closes after the first fill, before the last test bar
        while k + 1 < nk and fills[k + 1] < t:
            k += 1          # the window whose holdings are live at close t (last fill before t)
        if k + 1 < nk and fills[k + 1] == t:
            continue        # a fill bar: set above
        for j in range(m):
            w = wk[k, j]
            if w > 0.0 and tradable[t, sym[j]]:
                nxt = gates[t + 1, gate_col[j]]
                if nxt != gates[t, gate_col[j]]:   # g_{t+1} != g_t on a held atom
                    target[t - b0, lo + j] = sign[j] * w * nxt


def compile_batch(closes: pd.DataFrame, plans: list[CellPlan], gates: np.ndarray, gate_keys: dict,
                  panel: tuple) -> Batch:
    """Build the order schedule of ``plans`` (cells of one batch)."""
    val, tradable_sym, last_sym, bust_sym = panel
    n_bars = len(closes)
    sym_col = {s: j for j, s in enumerate(closes.columns)}
    b0 = min(p.start_bar for p in plans)
    b1 = max(p.end_bar for p in plans)
    rows = b1 - b0 + 1
    col_group, col_atom, col_symbol, col_sign, col_gate, col_sym = [], [], [], [], [], []
    weights_of: list[tuple[int, int, list, list, list]] = []   # per cell: lo, hi, window, column, weight
    for gi, p in enumerate(plans):
        cols: dict[tuple[str, str], int] = {}
        lo = len(col_atom)
        ks, js, ws = [], [], []
        for k, wp in enumerate(p.windows):
            weights = wp.weights
            for a in wp.atoms:
                w = weights.get(a.id, 0.0)
                if w > 0.0:
                    key = (a.id, a.symbol)
                    j = cols.get(key)
                    if j is None:
                        j = cols[key] = len(col_atom)
                        col_group.append(gi)
                        col_atom.append(a.id)
                        col_symbol.append(a.symbol)
                        col_sign.append(_DIR_SIGN.get(a.direction) or Direction(a.direction).sign)
                        col_gate.append(gate_keys[_gate_key(a)])
                        col_sym.append(sym_col[a.symbol])
                    ks.append(k)
                    js.append(j)
                    ws.append(w)
        weights_of.append((lo, len(col_atom), ks, js, ws))
    n_cols = len(col_atom)
    col_sym_a = np.asarray(col_sym, dtype=np.int64)
    col_group_a = np.asarray(col_group, dtype=np.int64)
    target = np.full((rows, n_cols), np.nan)
    sign_a = np.asarray(col_sign, dtype=np.float64)
    gate_a = np.asarray(col_gate, dtype=np.int64)
    gates = np.ascontiguousarray(gates, dtype=np.float64)
    for p, (lo, hi, ks, js, ws) in zip(plans, weights_of):
        if hi == lo:
            continue
        wk = np.zeros((len(p.windows), hi - lo))  # weight of each column in each window
        wk[np.asarray(ks, dtype=np.int64), np.asarray(js, dtype=np.int64) - lo] = ws
        fills = np.array([wp.window.fill_bar for wp in p.windows], dtype=np.int64)
        _cell_targets_nb(target, lo, wk, fills, gates, gate_a[lo:hi], sign_a[lo:hi], tradable_sym,
                         col_sym_a[lo:hi], b0, p.end_bar)
    # delisting inside the cell's range: close at the last price
    if n_cols:
        last_c = last_sym[col_sym_a]
        start_g = np.array([p.start_bar for p in plans], dtype=np.int64)[col_group_a]
        end_g = np.array([p.end_bar for p in plans], dtype=np.int64)[col_group_a]
        inside = (last_c < n_bars - 1) & (start_g <= last_c) & (last_c < end_g)
        inside &= tradable_sym[last_c, col_sym_a]
        target[last_c[inside] - b0, np.flatnonzero(inside)] = 0.0
    sl = slice(b0, b1 + 1)
    bust = bust_sym[col_sym_a] if n_cols else np.zeros(0, dtype=np.int64)
    bust_row = np.where((bust >= b0) & (bust <= b1), bust - b0, -1)
    last = last_sym[col_sym_a] if n_cols else np.zeros(0, dtype=np.int64)
    delist_row = np.where((last < n_bars - 1) & (last >= b0) & (last < b1) & (bust < 0), last - b0, -1)
    start_row = np.array([p.start_bar - b0 for p in plans], dtype=np.int64)
    end_row = np.array([p.end_bar - b0 for p in plans], dtype=np.int64)
    wor = [np.repeat(np.array([wp.window.index for wp in p.windows], dtype=np.int64),
                     np.array([wp.window.n_test for wp in p.windows], dtype=np.int64)) for p in plans]
    return Batch(b0=b0, dates=closes.index[sl], sym_price=val[sl], col_sym=col_sym_a,
                 target=target, bust_row=bust_row, delist_row=delist_row,
                 col_group=col_group_a,
                 col_atom=col_atom, col_symbol=col_symbol, col_sign=sign_a,
                 cell_ids=[p.cell_id for p in plans], start_row=start_row, end_row=end_row,
                 window_of_row=wor, n_windows=np.array([len(p.windows) for p in plans], dtype=np.int64))


def chunk_plans(plans: list[CellPlan], n_bars: int, max_bytes: int, bytes_per_value: int) -> list[list[int]]:
    """Split plan indices into chunks whose (bars x columns x bytes_per_value) stays under ``max_bytes``.

    Column counts are upper bounds (atoms with a positive weight, plus one). A single cell above the
    budget forms its own chunk.
    """
    chunks: list[list[int]] = []
    cur: list[int] = []
    used = 0
    for i, p in enumerate(plans):
        ids = {(a.id, a.symbol) for wp in p.windows for a in wp.atoms if wp.weights.get(a.id, 0.0) > 0}
        cost = (len(ids) + 1) * (p.end_bar - p.start_bar + 1 if len(plans) == 1 else n_bars) * bytes_per_value
        if cur and used + cost > max_bytes:
            chunks.append(cur)
            cur, used = [], 0
        cur.append(i)
        used += cost
    if cur:
        chunks.append(cur)
    return chunks
