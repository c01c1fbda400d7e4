"""``positions.parquet`` read for the run checks one cell at a time (issue 16: the large preset's peak).

The file holds one row per cell, bar and held atom: tens of millions of rows on the large preset.
Decoded whole into pandas (three string columns) and split by cell it took several GiB. Here a first
pass reads only ``cell_id`` (dictionary-encoded) and ``units`` of each row group, one at a time, and
notes which cells each row group holds and which cells hold units; ``cell(cid)`` then reads the row
groups that hold ``cid`` and keeps its rows. Each cell's frame is the one
``check_frame(pd.read_parquet(path), "positions.parquet")`` grouped by ``cell_id`` gives (same rows
in file order, same columns and dtypes); at most one row group is decoded at a time besides the
cell's own rows. The files the tournament writes hold each cell's rows contiguously, so a row group
is read about once per cell it holds.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from contracts.schemas import check_frame

NAME = "positions.parquet"
#: string columns read as dictionaries (a 32-bit code per row)
DICTIONARY_COLUMNS = ["cell_id", "atom_id", "symbol"]


def _cell_codes(table) -> tuple[np.ndarray, list, np.ndarray]:
    """``(codes, dictionary, valid)`` of a table's dictionary-encoded ``cell_id`` column."""
    col = table.column("cell_id").combine_chunks()
    valid = col.is_valid().to_numpy(zero_copy_only=False) if col.null_count else np.ones(len(col), bool)
    codes = col.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, col.dictionary.to_pylist(), valid


class PositionsByCell:
    """The rows of ``positions.parquet`` by cell (see the module docstring).

    ``cell(cid)``: that cell's rows as a checked frame (empty, with the schema's columns and dtypes,
    for a cell without rows); ``file_order(cids)``: the order to ask for cells in; ``held_cells()``: the cells with a row whose ``units != 0``. A file
    whose columns or dtypes differ from the schema raises ``DataError`` (``check_frame``) here. Rows
    without a ``cell_id`` belong to no cell (grouping by ``cell_id`` drops them too).
    """

    def __init__(self, path: str | os.PathLike):
        import pyarrow.parquet as pq

        self._file = pq.ParquetFile(path, read_dictionary=DICTIONARY_COLUMNS)
        self._empty = check_frame(self._file.schema_arrow.empty_table().to_pandas(), NAME)  # columns, dtypes
        self._groups: dict[str, list[int]] = {}
        self._held: set[str] = set()
        self._rows = 0
        self._last = None
        for i in range(self._file.num_row_groups):
            t = self._file.read_row_group(i, columns=["cell_id", "units"])
            self._rows += t.num_rows
            codes, dictionary, valid = _cell_codes(t)
            units = t.column("units").to_numpy()
            for k in np.flatnonzero(np.bincount(codes[valid], minlength=len(dictionary))):
                self._groups.setdefault(str(dictionary[k]), []).append(i)
            held = np.bincount(codes[valid & (units != 0.0)], minlength=len(dictionary))
            self._held.update(str(dictionary[k]) for k in np.flatnonzero(held))

    def __len__(self) -> int:
        return self._rows

    def cell(self, cid: str) -> pd.DataFrame:
        cid = str(cid)
        groups = self._groups.get(cid)
        if not groups:
            return self._empty
        parts = []
        for i in groups:
            frame, codes, dictionary, valid = self._row_group(i)
            k = dictionary.index(cid)
            parts.append(frame.iloc[np.flatnonzero(valid & (codes == k))])
        out = parts[0] if len(parts) == 1 else pd.concat(parts)
        return out.reset_index(drop=True)

    def _row_group(self, i: int):
        """Row group ``i`` decoded and checked once (``check_frame`` works column by column and keeps
        rows by position, so a cell's rows taken out of it equal the cell's rows of the whole checked
        file), with its cell codes; the last one read is kept (cells asked for in ``file_order`` read
        each row group about once)."""
        if self._last is None or self._last[0] != i:
            self._last = None  # free the previous row group before decoding the next
            t = self._file.read_row_group(i)
            self._last = (i, check_frame(t.to_pandas(), NAME), *_cell_codes(t))
        return self._last[1:]

    def file_order(self, cids) -> list[str]:
        """``cids`` by the first row group holding each (cells without rows first), ties in the given
        order: asking for the cells in this order decodes each row group about once."""
        return sorted((str(c) for c in cids), key=lambda c: (self._groups.get(c) or [-1])[0])

    def held_cells(self) -> set[str]:
        return set(self._held)
