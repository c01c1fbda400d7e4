"""Compile cell plans into the order schedule both simulators execute (DESIGN section 3).

One column per (cell, atom id, symbol). An order record ``(t, j, x)`` sets column ``j`` to the signed
fraction ``x = d * g * w`` of the portfolio's value (at the close of ``t``, before trading) at the close
of bar ``t``; where there is no record, units are held. The records are sparse (a cell trades at a few
percent of its bars x columns) and sorted by cell, row, then column; ``Batch.target_matrix`` writes
them into the dense (bars x columns) array with NaN for no order. Orders are placed:

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
from market.gates import atom_gates_array
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
    n_rows: int                      # n = b1 - b0 + 1
    ord_row: np.ndarray              # (K,) int64 row of each order record (sorted by cell, row, column)
    ord_col: np.ndarray              # (K,) int64 column
    ord_val: np.ndarray              # (K,) float64 signed target fraction of value (0.0: close)
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
        return self.n_rows, len(self.col_group)

    def target_matrix(self) -> np.ndarray:
        """(n, C) signed target fractions, NaN = no order (a new array; the vectorbt path packs the
        records without it)."""
        out = np.full(self.shape, np.nan)
        out[self.ord_row, self.ord_col] = self.ord_val
        return out

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
    seen: set[int] = set()   # atom objects already keyed (plans reuse one object across windows)
    atoms = []
    for p in plans:
        for wp in p.windows:
            for a in wp.atoms:
                if id(a) not in seen:
                    seen.add(id(a))
                    atoms.append(a)
    return gates_of(closes, atoms, gap)


def gates_of(closes: pd.DataFrame, atoms: list, gap: int) -> tuple[np.ndarray, dict]:
    """Gates of the distinct (symbol, logic, direction) keys of ``atoms``: (bars, K) array and
    key->column (``market.gates.atom_gates_array``, one column per key in first-seen order)."""
    keys: dict = {}
    first = []
    for a in atoms:
        k = _gate_key(a)
        if k not in keys:
            keys[k] = len(first)
            first.append(a)
    if not first:
        return np.zeros((len(closes), 0)), keys
    col = {s: j for j, s in enumerate(closes.columns)}
    return atom_gates_array(closes.to_numpy(dtype=np.float64), col, first, gap), keys


@dataclass(frozen=True)
class CellColumns:
    """One cell's logical columns and weights, read from its plan once (``cell_columns``).

    A column is an (atom id, symbol) with a positive weight in some window, numbered by first
    appearance (windows in order, each window's atoms in order); ``atoms`` holds the first atom object
    seen for each. ``win``, ``col``, ``weight``: one entry per (window, atom) with a positive weight:
    the window's position in ``plan.windows``, the column, the weight."""

    atoms: list
    win: np.ndarray     # (T,) int64
    col: np.ndarray     # (T,) int64
    weight: np.ndarray  # (T,) float64


def cell_columns(plan: CellPlan) -> CellColumns:
    """The logical columns of ``plan`` and its (window, column, weight) entries (see ``CellColumns``)."""
    cols: dict[tuple[str, str], int] = {}
    by_obj: dict[int, int] = {}    # atom object -> column (plans reuse one object across windows)
    atoms: list = []
    ks: list[int] = []
    js: list[int] = []
    ws: list[float] = []
    add_k, add_j, add_w = ks.append, js.append, ws.append
    for k, wp in enumerate(plan.windows):
        weights = wp.weights
        for a in wp.atoms:
            w = weights.get(a.id, 0.0)
            if w > 0.0:
                j = by_obj.get(id(a))
                if j is None:
                    key = (a.id, a.symbol)
                    j = cols.get(key)
                    if j is None:
                        j = cols[key] = len(atoms)
                        atoms.append(a)
                    by_obj[id(a)] = j
                add_k(k)
                add_j(j)
                add_w(w)
    return CellColumns(atoms=atoms, win=np.array(ks, dtype=np.int64), col=np.array(js, dtype=np.int64),
                       weight=np.array(ws, dtype=np.float64))


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
def _orders_bound_nb(lo, hi, c0, endb, fo, fills, wo, wk, dl):  # pragma: no cover - compiled
    """An upper bound of ``_orders_nb``'s record count: per cell, every column at each fill bar and at
    each delisting bar, and every held column at each other bar of the windows."""
    out = 0
    for g in range(len(lo)):
        m, nk = hi[g] - lo[g], fo[g + 1] - fo[g]
        for j in range(lo[g], hi[g]):
            out += m if dl[j] >= 0 else 0
        for k in range(nk):
            nxt = fills[fo[g] + k + 1] if k + 1 < nk else endb[g]
            held = 0
            for j in range(m):
                held += wk[wo[g] + k * m + j] > 0.0
            out += m + max(nxt - fills[fo[g] + k] - 1, 0) * held
    return out


@numba.njit(cache=True)
def _orders_nb(out_row, out_col, out_val, lo, hi, c0, endb, fo, fills, wo, wk, gates, gate_col, sign,
               tradable, sym, dl, b0):  # pragma: no cover - compiled
    """Write the order records of a batch's cells (see module docstring) into ``out_*`` (sized by
    ``_orders_bound_nb``); returns their count.

    Cell ``g``: columns ``lo[g]:hi[g]``, first cut-off ``c0[g]``, last test bar ``endb[g]``, fill bars
    ``fills[fo[g]:fo[g+1]]`` (increasing), and ``wk[wo[g]:]`` the (windows x columns) weight of each of
    its columns in each window, row-major. Per column: gate key ``gate_col``, ``sign`` d, symbol ``sym``
    (column of ``tradable``, panel bars x symbols; no order where the close is not tradable), ``dl``
    the panel bar of its delisting close or -1. Records come out by cell, row, then column; the value
    is ``(d * w) * g`` (fill: ``g_{f+1}``; gate change: ``g_{t+1}``), 0.0 to close. Returns the count.
    """
    pos = 0
    for g in range(len(lo)):
        a, m, nk = lo[g], hi[g] - lo[g], fo[g + 1] - fo[g]
        if m == 0:
            continue
        f0 = fo[g]
        w0 = wo[g]
        # each window's columns with a positive weight, ascending (the only ones a gate change moves)
        act = np.empty(nk * m, np.int64)
        act_off = np.zeros(nk + 1, np.int64)
        for k in range(nk):
            q = act_off[k]
            for j in range(m):
                if wk[w0 + k * m + j] > 0.0:
                    act[q] = j
                    q += 1
            act_off[k + 1] = q
        # delisting closes of the cell's columns, by bar then column
        nd = 0
        for j in range(m):
            nd += dl[a + j] >= 0
        d_bar = np.empty(nd, np.int64)
        q = 0
        for j in range(m):
            if dl[a + j] >= 0:
                d_bar[q] = dl[a + j]
                q += 1
        d_bar = np.sort(d_bar)
        dp = 0
        k = -1      # the window whose holdings are live at close t (last fill at or before t)
        kf = 0      # next fill
        for t in range(c0[g], endb[g]):
            is_fill = kf < nk and fills[f0 + kf] == t
            if is_fill:
                k = kf
                kf += 1
            has_del = dp < nd and d_bar[dp] == t
            while dp < nd and d_bar[dp] == t:
                dp += 1
            if not has_del and not is_fill and k < 0:
                continue
            if is_fill or has_del:
                n_j = m
            else:
                n_j = act_off[k + 1] - act_off[k]
            for q in range(n_j):
                j = q if (is_fill or has_del) else act[act_off[k] + q]
                c = a + j
                v = np.nan
                if k >= 0 and tradable[t, sym[c]]:
                    w = wk[w0 + k * m + j]
                    if is_fill:     # fill: set this window's atoms, close the previous window's others
                        if w > 0.0:
                            v = sign[c] * w * gates[t + 1, gate_col[c]]
                        elif k > 0 and wk[w0 + (k - 1) * m + j] > 0.0:
                            v = 0.0
                    elif w > 0.0:   # g_{t+1} != g_t on a held atom
                        nxt = gates[t + 1, gate_col[c]]
                        if nxt != gates[t, gate_col[c]]:
                            v = sign[c] * w * nxt
                if dl[c] == t:      # delisting inside the cell's range: close at the last price
                    v = 0.0
                if v == v:
                    out_row[pos] = t - b0
                    out_col[pos] = c
                    out_val[pos] = v
                    pos += 1
    return pos


def compile_batch(closes: pd.DataFrame, plans: list[CellPlan], gates: np.ndarray, gate_keys: dict,
                  panel: tuple, columns: list[CellColumns] | None = None) -> Batch:
    """Build the order schedule of ``plans`` (cells of one batch) as order records.

    ``columns``: each plan's ``cell_columns`` when already read (``simulate`` reads them once)."""
    val, tradable_sym, last_sym, bust_sym = panel
    n_bars = len(closes)
    sym_col = {s: j for j, s in enumerate(closes.columns)}
    b0 = min(p.start_bar for p in plans)
    b1 = max(p.end_bar for p in plans)
    rows = b1 - b0 + 1
    if columns is None:
        columns = [cell_columns(p) for p in plans]
    col_group, col_atom, col_symbol, col_sign, col_gate, col_sym = [], [], [], [], [], []
    lo_l, wo_l, wflat_i, wflat_w = [], [0], [], []
    for gi, (p, cc) in enumerate(zip(plans, columns)):
        lo = len(col_atom)
        m = len(cc.atoms)
        for a in cc.atoms:
            col_atom.append(a.id)
            col_symbol.append(a.symbol)
            col_sign.append(_DIR_SIGN.get(a.direction) or Direction(a.direction).sign)
            col_gate.append(gate_keys[_gate_key(a)])
            col_sym.append(sym_col[a.symbol])
        col_group.extend([gi] * m)
        lo_l.append(lo)
        # flat index of (window k, column j) in the cell's (windows x columns) weight block
        wflat_i.append(wo_l[-1] + cc.win * m + cc.col)
        wflat_w.append(cc.weight)
        wo_l.append(wo_l[-1] + len(p.windows) * m)
    n_cols = len(col_atom)
    col_sym_a = np.asarray(col_sym, dtype=np.int64)
    col_group_a = np.asarray(col_group, dtype=np.int64)
    sign_a = np.asarray(col_sign, dtype=np.float64)
    gate_a = np.asarray(col_gate, dtype=np.int64)
    wk = np.zeros(wo_l[-1])
    wk[np.concatenate(wflat_i)] = np.concatenate(wflat_w)
    lo_a = np.asarray(lo_l, dtype=np.int64)
    hi_a = np.r_[lo_a[1:], n_cols].astype(np.int64)
    start_bar = np.array([p.start_bar for p in plans], dtype=np.int64)
    end_bar = np.array([p.end_bar for p in plans], dtype=np.int64)
    fills = np.array([wp.window.fill_bar for p in plans for wp in p.windows], dtype=np.int64)
    fo = np.r_[0, np.cumsum([len(p.windows) for p in plans])].astype(np.int64)
    # delisting inside the cell's range (a last price before the panel's end, from its first cut-off
    # to before its last test bar, tradable there): close at the last price
    last_c = last_sym[col_sym_a] if n_cols else np.zeros(0, dtype=np.int64)
    start_g, end_g = start_bar[col_group_a], end_bar[col_group_a]
    inside = (last_c < n_bars - 1) & (start_g <= last_c) & (last_c < end_g)
    inside &= tradable_sym[last_c, col_sym_a]
    dl = np.where(inside, last_c, -1).astype(np.int64)
    wo = np.asarray(wo_l, dtype=np.int64)
    cap = _orders_bound_nb(lo_a, hi_a, start_bar, end_bar, fo, fills, wo, wk, dl)
    ord_row, ord_col, ord_val = np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap)
    n_ord = _orders_nb(ord_row, ord_col, ord_val, lo_a, hi_a, start_bar, end_bar, fo, fills, wo, wk,
                       np.ascontiguousarray(gates, dtype=np.float64), gate_a, sign_a, tradable_sym, col_sym_a,
                       dl, b0)
    # compact copies (the bound's buffers are mostly untouched pages)
    ord_row, ord_col, ord_val = ord_row[:n_ord].copy(), ord_col[:n_ord].copy(), ord_val[:n_ord].copy()
    sl = slice(b0, b1 + 1)
    bust = bust_sym[col_sym_a] if n_cols else np.zeros(0, dtype=np.int64)
    bust_row = np.where((bust >= b0) & (bust <= b1), bust - b0, -1)
    delist_row = np.where((last_c < n_bars - 1) & (last_c >= b0) & (last_c < b1) & (bust < 0), last_c - b0, -1)
    start_row = start_bar - b0
    end_row = end_bar - b0
    wor = [np.repeat(np.array([wp.window.index for wp in p.windows], dtype=np.int64),
                     np.array([wp.window.n_test for wp in p.windows], dtype=np.int64)) for p in plans]
    return Batch(b0=b0, dates=closes.index[sl], sym_price=val[sl], col_sym=col_sym_a, n_rows=rows,
                 ord_row=ord_row, ord_col=ord_col, ord_val=ord_val, bust_row=bust_row, delist_row=delist_row,
                 col_group=col_group_a,
                 col_atom=col_atom, col_symbol=col_symbol, col_sign=sign_a,
                 cell_ids=[p.cell_id for p in plans], start_row=start_row, end_row=end_row,
                 window_of_row=wor, n_windows=np.array([len(p.windows) for p in plans], dtype=np.int64))


def chunk_plans(plans: list[CellPlan], n_bars: int, max_bytes: int, bytes_per_value: int,
                n_columns: list[int] | None = None) -> list[list[int]]:
    """Split plan indices into chunks whose (bars x columns x bytes_per_value) stays under ``max_bytes``.

    Column counts are upper bounds (atoms with a positive weight, plus one); ``n_columns``: each plan's
    count of distinct (atom id, symbol) with a positive weight when already known (``cell_columns``).
    A single cell above the budget forms its own chunk.
    """
    chunks: list[list[int]] = []
    cur: list[int] = []
    used = 0
    for i, p in enumerate(plans):
        if n_columns is None:
            n_ids = len({(a.id, a.symbol) for wp in p.windows for a in wp.atoms if wp.weights.get(a.id, 0.0) > 0})
        else:
            n_ids = n_columns[i]
        cost = (n_ids + 1) * (p.end_bar - p.start_bar + 1 if len(plans) == 1 else n_bars) * bytes_per_value
        if cur and used + cost > max_bytes:
            chunks.append(cur)
            cur, used = [], 0
        cur.append(i)
        used += cost
    if cur:
        chunks.append(cur)
    return chunks
