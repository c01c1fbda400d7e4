"""``positions.parquet`` read for the run checks one cell at a time (issue 16: the large preset's peak).

The file holds one row per cell, bar and held atom: tens of millions of rows on the large preset.
Decoded whole into pandas (three string columns) and split by cell it took several GiB. Here it is
read once as an Arrow table whose string columns stay dictionary-encoded (``read_dictionary``: a
32-bit code per row), and ``cell(cid)`` decodes one cell's rows when a check asks for them: the frame
``check_frame(pd.read_parquet(path), "positions.parquet")`` grouped by ``cell_id`` gives (same rows
in file order, same columns and dtypes).
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from contracts.schemas import RUN_SCHEMAS, check_frame

NAME = "positions.parquet"
#: string columns read as dictionaries
DICTIONARY_COLUMNS = ("cell_id", "atom_id", "symbol")


class PositionsByCell:
    """The rows of ``positions.parquet`` by cell (see the module docstring).

    ``cell(cid)``: that cell's rows as a checked frame (empty, with the schema's columns and dtypes,
    for a cell without rows); ``held_cells()``: the cells with a row whose ``units != 0``. A file
    whose columns or dtypes differ from the schema raises ``DataError`` (``check_frame``) here.
    """

    def __init__(self, path: str | os.PathLike):
        import pyarrow.parquet as pq

        names = [c.name for c in RUN_SCHEMAS[NAME]]
        table = pq.read_table(path, read_dictionary=list(DICTIONARY_COLUMNS))
        self._empty = check_frame(table.slice(0, 0).to_pandas(), NAME)  # columns and dtypes checked once
        if table.column_names != names:  # pragma: no cover - check_frame above raises first
            raise AssertionError(table.column_names)
        if table.column("cell_id").null_count:  # rows of no cell: grouping by cell_id drops them too
            table = table.filter(table.column("cell_id").is_valid())
        self._table = table.unify_dictionaries()
        col = self._table.column("cell_id")
        chunks = [c for c in col.chunks if len(c)]
        dictionary = chunks[0].dictionary.to_pylist() if chunks else []
        codes = (np.concatenate([c.indices.to_numpy(zero_copy_only=False).astype(np.int64) for c in chunks])
                 if chunks else np.zeros(0, np.int64))
        self._code = {str(v): i for i, v in enumerate(dictionary)}
        self._order = np.argsort(codes, kind="stable")  # each cell's rows, in file order
        self._bounds = np.searchsorted(codes[self._order], np.arange(len(dictionary) + 1))
        units = self._table.column("units").to_numpy()
        self._held = {str(dictionary[k]) for k in np.unique(codes[units != 0.0])}

    def __len__(self) -> int:
        return self._table.num_rows

    def cell(self, cid: str) -> pd.DataFrame:
        k = self._code.get(str(cid))
        if k is None:
            return self._empty
        rows = self._order[self._bounds[k]:self._bounds[k + 1]]
        return check_frame(self._table.take(rows).to_pandas(), NAME)

    def held_cells(self) -> set[str]:
        return set(self._held)
