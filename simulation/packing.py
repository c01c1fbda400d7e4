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

Construction (``pack``): one pass over the batch's order records (sorted by cell, row, column; no
bars x columns scan) finds the pieces and assigns their slots as they open (a cell's pieces open in
(start row, column) order, the first fit's order), then one row-major pass writes the occupants and
the slot columns' order and price arrays that vectorbt takes.

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
    ``occ[i, s]``: logical column occupying slot ``s`` at row ``i`` (-1 when idle); ``rec_slot``: slot of
    each order record (-1: a zero order while the column holds nothing, dropped).
    """

    slot_group: np.ndarray    # (S,) int64
    occ: np.ndarray           # (n, S) int64
    piece_col: np.ndarray     # (P,) int64 logical column
    piece_slot: np.ndarray    # (P,) int64
    piece_start: np.ndarray   # (P,) int64 first row
    piece_end: np.ndarray     # (P,) int64 last row (inclusive)
    piece_closed: np.ndarray  # (P,) bool: ends with a zero-target order at piece_end
    rec_slot: np.ndarray      # (K,) int64 slot of each order record, -1 if dropped

    @property
    def n_slots(self) -> int:
        return len(self.slot_group)


@numba.njit(cache=True)
def _pack_nb(row, col, val, col_group, n_groups, n_cols, n_rows):  # pragma: no cover - compiled
    """Pieces and first-fit slots in one pass over the order records (sorted by cell, row, column).

    A cell's pieces are created in (start row, column) order, which is the order the first fit takes
    them in (see module docstring). When a piece starts at row ``i``, a slot is free if its last piece
    was closed at a row before ``i``: a piece still open ends at ``i`` or later. Returns the pieces
    (by slot, then start row), the slot of each record and the slot count of each cell."""
    n_r = len(row)
    cap = 0
    for r in range(n_r):
        v = val[r]
        cap += v == v and v != 0.0
    p_col = np.empty(cap, np.int64)
    p_slot = np.empty(cap, np.int64)
    p_start = np.empty(cap, np.int64)
    p_end = np.empty(cap, np.int64)
    p_closed = np.zeros(cap, np.bool_)
    rec_piece = np.full(n_r, -1, np.int64)
    open_piece = np.full(n_cols, -1, np.int64)
    counts = np.zeros(n_groups, np.int64)
    busy = np.zeros(max(n_cols, 1), np.bool_)       # local slots of the current cell (at most its columns)
    last_end = np.zeros(max(n_cols, 1), np.int64)
    n_p = 0
    n_s = 0
    offset = 0
    g_cur = -1
    for r in range(n_r):
        j = col[r]
        i = row[r]
        v = val[r]
        g = col_group[j]
        if g != g_cur:
            if g_cur >= 0:
                counts[g_cur] = n_s
                offset += n_s
            n_s = 0
            g_cur = g
        if v != v:
            continue
        p = open_piece[j]
        if v != 0.0:
            if p < 0:
                s = 0
                while s < n_s and (busy[s] or last_end[s] >= i):
                    s += 1
                if s == n_s:
                    n_s += 1
                busy[s] = True
                p = n_p
                n_p += 1
                p_col[p] = j
                p_slot[p] = offset + s
                p_start[p] = i
                open_piece[j] = p
            rec_piece[r] = p
        elif p >= 0:               # a zero order closes the open piece
            p_end[p] = i
            p_closed[p] = True
            s = p_slot[p] - offset
            busy[s] = False
            last_end[s] = i
            open_piece[j] = -1
            rec_piece[r] = p
    if g_cur >= 0:
        counts[g_cur] = n_s
        offset += n_s
    for j in range(n_cols):        # still open at the last row
        p = open_piece[j]
        if p >= 0:
            p_end[p] = n_rows - 1
    # by slot, then start (a slot's pieces were created by start row): counting sort on the slot
    first = np.zeros(offset + 1, np.int64)
    for p in range(n_p):
        first[p_slot[p] + 1] += 1
    for s in range(offset):
        first[s + 1] += first[s]
    where = first[:-1].copy()
    new_of = np.empty(n_p, np.int64)
    for p in range(n_p):
        s = p_slot[p]
        new_of[p] = where[s]
        where[s] += 1
    o_col = np.empty(n_p, np.int64)
    o_slot = np.empty(n_p, np.int64)
    o_start = np.empty(n_p, np.int64)
    o_end = np.empty(n_p, np.int64)
    o_closed = np.empty(n_p, np.bool_)
    for p in range(n_p):
        q = new_of[p]
        o_col[q] = p_col[p]
        o_slot[q] = p_slot[p]
        o_start[q] = p_start[p]
        o_end[q] = p_end[p]
        o_closed[q] = p_closed[p]
    rec_slot = np.full(n_r, -1, np.int64)
    for r in range(n_r):
        if rec_piece[r] >= 0:
            rec_slot[r] = p_slot[rec_piece[r]]
    return o_col, o_slot, o_start, o_end, o_closed, first, rec_slot, counts


@numba.njit(cache=True)
def _slot_arrays_nb(n, first, p_col, p_start, p_end, rec_row, rec_slot, val, price, col_sym):  # pragma: no cover
    """Row by row: ``occ`` (the occupant, -1 idle), the slot's price (its current piece's column, or
    the last piece's over idle rows, or the first piece's before it) and the orders (NaN = none)."""
    n_s = len(first) - 1
    occ = np.empty((n, n_s), np.int64)
    size = np.empty((n, n_s))
    px = np.empty((n, n_s))
    cur = first[:-1].copy()
    for i in range(n):
        for s in range(n_s):
            p = cur[s]
            if p + 1 < first[s + 1] and p_start[p + 1] <= i:
                p += 1              # pieces of a slot start at distinct rows: one step at most
                cur[s] = p
            j = p_col[p]
            occ[i, s] = j if p_start[p] <= i and i <= p_end[p] else -1
            size[i, s] = np.nan
            px[i, s] = price[i, col_sym[j]]
    for r in range(len(rec_row)):
        s = rec_slot[r]
        if s >= 0:
            size[rec_row[r], s] = val[r]
    return occ, size, px


def pack(n_rows: int, row: np.ndarray, col: np.ndarray, val: np.ndarray, col_group: np.ndarray,
         n_groups: int, price: np.ndarray, col_sym: np.ndarray) -> tuple[Packing, np.ndarray, np.ndarray]:
    """Pieces and slots of a batch's order records (see module docstring), and the slot columns' order
    and price arrays for vectorbt.

    ``row``, ``col``, ``val``: order records sorted by cell, row, then column (``Batch.ord_*``), at most
    one per (row, column); ``col_group``: (C,) cell of each column, columns of one cell contiguous;
    ``price``: (n, K) valuation price per symbol (``Batch.sym_price``) and ``col_sym`` the symbol of each
    column. A cell whose atoms never open a position gets no slot. Returns (``Packing``, size, price),
    size and price (n, S): the target of the slot's occupant where it has an order (NaN = none) and
    the price of the slot's current (or last, or first) atom's symbol.
    """
    grp = np.ascontiguousarray(col_group, dtype=np.int64)
    row = np.ascontiguousarray(row, dtype=np.int64)
    val = np.ascontiguousarray(val, dtype=np.float64)
    p_col, p_slot, p_start, p_end, p_closed, first, rec_slot, counts = _pack_nb(
        row, np.ascontiguousarray(col, dtype=np.int64), val, grp, int(n_groups), len(grp), int(n_rows))
    occ, size, px = _slot_arrays_nb(int(n_rows), first, p_col, p_start, p_end, row, rec_slot, val,
                                    np.ascontiguousarray(price, dtype=np.float64),
                                    np.ascontiguousarray(col_sym, dtype=np.int64))
    slot_group = np.repeat(np.arange(n_groups, dtype=np.int64), counts)
    pk = Packing(slot_group=slot_group, occ=occ, piece_col=p_col, piece_slot=p_slot, piece_start=p_start,
                 piece_end=p_end, piece_closed=p_closed, rec_slot=rec_slot)
    return pk, size, px


def unclosed_pieces(units_slots: np.ndarray, pk: Packing) -> np.ndarray:
    """Indices of pieces that end with a zero-target order but where the slot still holds units."""
    held = units_slots[pk.piece_end, pk.piece_slot]
    return np.flatnonzero(pk.piece_closed & (held != 0.0))
