"""Column recycling for the vectorbt call: pack each cell's atom columns into as few columns as possible.

Why: vectorbt's ``simulate_from_orders_nb`` costs about 0.13 us per (bar, column) element whether or not
an order is placed at that bar, and a cell's atoms hold positions only during their windows. A cell
with 100 distinct atoms over 50 windows of 20 atoms has ~100 logical columns but only ~20-40 positions
open at any bar; packing cuts the loop's elements (and the memory of every (bar, column) array) by that
ratio.

The rule. A *piece* of a logical column (one atom of one cell) is a maximal run of bars over which its
position may be non-zero: it starts at an order with a non-zero target while the atom holds nothing,
and ends at the next order with a zero target (the position is closed there, at that close), or runs
to the batch's last row when no such order follows (a position still open at the end, a bust that
vectorbt cannot fill at price 0). A zero-target order while the atom holds nothing is a no-op and is
dropped. Each cell's pieces are assigned greedily, by start row (ties by column), to the lowest slot
whose previous piece ended strictly before the piece starts, so a slot never carries two atoms at one
bar. A slot carries its current (or, between pieces, its last; before its first piece, its first)
atom's valuation price, so a column is always an atom's position on that atom's asset's price, and
an idle slot holds 0 units.

The outputs mapped back to logical columns (units, trades, costs per atom) equal those of one column per atom up to
float summation order in the group value (~1e-16). ``closed`` marks pieces that end with a zero-target
order: the adapter checks that vectorbt left exactly 0 units there (a buy-to-cover cut by cash could
leave a remainder), and otherwise runs the batch unpacked.

The kernels are numba-compiled (``cache=True``: compiled once into the numba cache dir, then loaded).
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np


@dataclass(frozen=True)
class Packing:
    """Map between a batch's logical (atom) columns and the packed slot columns.

    Pieces are listed by slot, then start row. ``slot_group``: cell (batch group) of each slot;
    ``occ[i, s]``: logical column occupying slot ``s`` at row ``i`` (-1 when idle); ``src[i, s]``:
    logical column whose price slot ``s`` carries at row ``i``.
    """

    slot_group: np.ndarray    # (S,) int64
    occ: np.ndarray           # (n, S) int64
    src: np.ndarray           # (n, S) int64
    piece_col: np.ndarray     # (P,) int64 logical column
    piece_slot: np.ndarray    # (P,) int64
    piece_start: np.ndarray   # (P,) int64 first row
    piece_end: np.ndarray     # (P,) int64 last row (inclusive)
    piece_closed: np.ndarray  # (P,) bool: ends with a zero-target order at piece_end

    @property
    def n_slots(self) -> int:
        return len(self.slot_group)


@numba.njit(cache=True)
def _pieces_nb(target):  # pragma: no cover - compiled
    """Pieces of every column, read in row-major order (the array's own layout) with one open/start
    state per column; sized by a first pass (a piece starts at a non-zero order), so no array grows.
    Closed pieces come out by end row, then the pieces still open at the last row by column; ``pack``
    orders them itself."""
    n, c = target.shape
    cap = 0
    for i in range(n):
        for j in range(c):
            v = target[i, j]
            if v == v and v != 0.0:
                cap += 1
    col = np.empty(cap, np.int64)
    start = np.empty(cap, np.int64)
    end = np.empty(cap, np.int64)
    closed = np.empty(cap, np.bool_)
    open_ = np.zeros(c, np.bool_)
    s = np.zeros(c, np.int64)
    k = 0
    for i in range(n):
        for j in range(c):
            v = target[i, j]
            if v != v:
                continue
            if v != 0.0:
                if not open_[j]:
                    open_[j] = True
                    s[j] = i
            elif open_[j]:
                col[k], start[k], end[k], closed[k] = j, s[j], i, True
                k += 1
                open_[j] = False
    for j in range(c):
        if open_[j]:
            col[k], start[k], end[k], closed[k] = j, s[j], n - 1, False
            k += 1
    return col[:k], start[:k], end[:k], closed[:k]


@numba.njit(cache=True)
def _assign_nb(p_col, p_start, p_end, col_group, n_groups):  # pragma: no cover - compiled
    """First-fit slots per group, pieces taken in (group, start row, column) order (a unique key, so the
    result does not depend on the order the pieces are given in). Returns (slot per piece (global), slot
    count per group)."""
    n_p = len(p_col)
    slot = np.empty(n_p, np.int64)
    counts = np.zeros(n_groups, np.int64)
    grp = np.empty(n_p, np.int64)
    for p in range(n_p):
        grp[p] = col_group[p_col[p]]
    # order: group, start, column
    key = np.empty(n_p, np.int64)
    big = np.int64(p_start.max() + 1) if n_p else np.int64(1)
    ncol = np.int64(len(col_group))
    for p in range(n_p):
        key[p] = (grp[p] * big + p_start[p]) * ncol + p_col[p]
    order = np.argsort(key, kind="mergesort")
    ends = np.empty(max(n_p, 1), np.int64)
    g_prev = -1
    n_s = 0
    for q in range(n_p):
        p = order[q]
        g = grp[p]
        if g != g_prev:
            n_s = 0
            g_prev = g
        s_found = -1
        for s in range(n_s):
            if ends[s] < p_start[p]:
                s_found = s
                break
        if s_found < 0:
            s_found = n_s
            n_s += 1
        ends[s_found] = p_end[p]
        slot[p] = s_found
        if n_s > counts[g]:
            counts[g] = n_s
    offset = np.zeros(n_groups, np.int64)
    for g in range(1, n_groups):
        offset[g] = offset[g - 1] + counts[g - 1]
    for p in range(n_p):
        slot[p] += offset[grp[p]]
    return slot, counts


@numba.njit(cache=True)
def _maps_nb(n, n_slots, p_col, p_slot, p_start, p_end, order):  # pragma: no cover - compiled
    occ = np.full((n, n_slots), -1, np.int64)
    src = np.full((n, n_slots), -1, np.int64)
    for q in range(len(order)):
        p = order[q]
        s = p_slot[p]
        for i in range(p_start[p], p_end[p] + 1):
            occ[i, s] = p_col[p]
    for s in range(n_slots):
        cur = -1
        for i in range(n):          # forward fill the last piece's column over idle rows
            if occ[i, s] >= 0:
                cur = occ[i, s]
            src[i, s] = cur
        first = -1
        for i in range(n):          # rows before the first piece take the first piece's column
            if occ[i, s] >= 0:
                first = occ[i, s]
                break
        for i in range(n):
            if src[i, s] >= 0:
                break
            src[i, s] = first
    return occ, src


def pack(target: np.ndarray, col_group: np.ndarray, n_groups: int) -> Packing:
    """Pieces and slots of a batch's target schedule (see module docstring).

    ``target``: (n, C) signed target fractions, NaN = no order; ``col_group``: (C,) cell of each column,
    columns of one cell contiguous. A cell whose atoms never open a position gets no slot.
    """
    t = np.ascontiguousarray(target, dtype=np.float64)
    grp = np.ascontiguousarray(col_group, dtype=np.int64)
    p_col, p_start, p_end, p_closed = _pieces_nb(t)
    p_slot, counts = _assign_nb(p_col, p_start, p_end, grp, int(n_groups))
    n_slots = int(counts.sum())
    order = np.lexsort((p_start, p_slot))
    occ, src = _maps_nb(t.shape[0], n_slots, p_col, p_slot, p_start, p_end, order)
    slot_group = np.repeat(np.arange(n_groups, dtype=np.int64), counts)
    return Packing(slot_group=slot_group, occ=occ, src=src, piece_col=p_col[order],
                   piece_slot=p_slot[order], piece_start=p_start[order], piece_end=p_end[order],
                   piece_closed=p_closed[order])


@numba.njit(cache=True)
def _packed_orders_nb(target, price, col_sym, occ, src):  # pragma: no cover - compiled
    n, n_s = occ.shape
    size = np.empty((n, n_s))
    px = np.empty((n, n_s))
    for i in range(n):
        for s in range(n_s):
            j = occ[i, s]
            size[i, s] = target[i, j] if j >= 0 else np.nan
            px[i, s] = price[i, col_sym[src[i, s]]]
    return size, px


def packed_orders(target: np.ndarray, price: np.ndarray, pk: Packing,
                  col_sym: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Target and price arrays of the slot columns: (n, S) each (NaN = no order).

    ``price``: (n, C) price per logical column, or with ``col_sym`` (column -> price column) an (n, K)
    array per symbol (``Batch.sym_price``), read without building the (n, C) array."""
    n = target.shape[0]
    if not pk.n_slots:
        return np.full((n, 0), np.nan), np.zeros((n, 0))
    if col_sym is None:
        col_sym = np.arange(target.shape[1], dtype=np.int64)
    return _packed_orders_nb(np.ascontiguousarray(target, dtype=np.float64),
                             np.ascontiguousarray(price, dtype=np.float64),
                             np.ascontiguousarray(col_sym, dtype=np.int64), pk.occ, pk.src)


def unclosed_pieces(units_slots: np.ndarray, pk: Packing) -> np.ndarray:
    """Indices of pieces that end with a zero-target order but where the slot still holds units."""
    held = units_slots[pk.piece_end, pk.piece_slot]
    return np.flatnonzero(pk.piece_closed & (held != 0.0))
