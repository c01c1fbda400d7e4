"""``audit.positions_by_cell.PositionsByCell`` gives each cell the frame the whole file grouped by
``cell_id`` gives (the run checks' previous reading), without decoding every row at once."""
import numpy as np
import pandas as pd
import pytest

from audit.positions_by_cell import PositionsByCell
from contracts.errors import DataError
from contracts.schemas import check_frame


def _positions(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cells = np.array([f"c{i}" for i in range(9)], dtype=object)
    units = rng.normal(size=n)
    units[rng.random(n) < 0.3] = 0.0
    return check_frame(pd.DataFrame({
        "cell_id": cells[rng.integers(0, 8, n)],   # c8 never appears
        "date": pd.to_datetime("2021-03-01", utc=True) + pd.to_timedelta(rng.integers(0, 400, n), unit="D"),
        "atom_id": [f"A{k}:SHORT" for k in rng.integers(0, 60, n)],
        "symbol": [f"S{k}" for k in rng.integers(0, 40, n)],
        "units": units, "trade": rng.normal(size=n), "cost": rng.random(n)}), "positions.parquet")


@pytest.mark.parametrize("row_group_size", [None, 37])
def test_cells_equal_the_whole_file_grouped(tmp_path, row_group_size):
    """Rows in any order (cells interleaved), several row groups (each with its own dictionaries):
    every cell's frame, the empty frame of an absent cell and the held cells equal those of the
    whole file read into pandas and grouped by ``cell_id``."""
    df = _positions(500, 1)
    df.loc[df["cell_id"] == "c3", "units"] = 0.0  # rows, none held
    path = tmp_path / "positions.parquet"
    df.to_parquet(path, index=False, row_group_size=row_group_size)
    whole = check_frame(pd.read_parquet(path), "positions.parquet")
    by = PositionsByCell(path)
    assert len(by) == len(whole)
    groups = {str(c): g.reset_index(drop=True) for c, g in whole.groupby("cell_id", sort=False)}
    assert len(groups) == 8
    for cid, g in groups.items():
        pd.testing.assert_frame_equal(by.cell(cid), g, check_exact=True)
    empty = by.cell("c8")
    assert len(empty) == 0 and list(empty.dtypes) == list(whole.dtypes)
    held = whole.loc[whole["units"] != 0.0, "cell_id"]
    assert by.held_cells() == {str(c) for c in held.unique()}
    assert "c3" not in by.held_cells()


def test_empty_file_and_bad_schema(tmp_path):
    path = tmp_path / "positions.parquet"
    _positions(0, 2).to_parquet(path, index=False)
    by = PositionsByCell(path)
    assert len(by) == 0 and by.held_cells() == set() and len(by.cell("c0")) == 0
    _positions(10, 3).rename(columns={"units": "qty"}).to_parquet(path, index=False)
    with pytest.raises(DataError, match="positions.parquet"):
        PositionsByCell(path)


def test_rows_without_a_cell_are_dropped_as_grouping_drops_them(tmp_path):
    df = _positions(50, 4)
    df.loc[[3, 7], "cell_id"] = pd.NA
    path = tmp_path / "positions.parquet"
    df.to_parquet(path, index=False)
    whole = check_frame(pd.read_parquet(path), "positions.parquet")
    by = PositionsByCell(path)
    for cid, g in whole.groupby("cell_id", sort=False):
        pd.testing.assert_frame_equal(by.cell(str(cid)), g.reset_index(drop=True), check_exact=True)


def test_file_order_reads_each_row_group_about_once(tmp_path, monkeypatch):
    """Cells stored contiguously (as the tournament writes them) and asked for in ``file_order``:
    each row group is decoded once by ``cell``; the frames are those of the sorted order."""
    import pyarrow.parquet as pq

    df = _positions(600, 5).sort_values("cell_id", kind="stable", key=lambda s: s.map(lambda c: -int(c[1:])))
    path = tmp_path / "positions.parquet"
    df.to_parquet(path, index=False, row_group_size=50)
    by = PositionsByCell(path)
    reads = []
    orig = pq.ParquetFile.read_row_group
    monkeypatch.setattr(pq.ParquetFile, "read_row_group",
                        lambda self, i, *a, **k: reads.append(i) or orig(self, i, *a, **k))
    order = by.file_order(sorted(by.held_cells()))
    assert order == sorted(by.held_cells(), key=lambda c: -int(c[1:]))
    got = {c: by.cell(c) for c in order}
    assert sorted(reads) == list(range(pq.ParquetFile(path).num_row_groups))
    whole = check_frame(pd.read_parquet(path), "positions.parquet")
    for cid, g in whole.groupby("cell_id", sort=False):
        pd.testing.assert_frame_equal(got[str(cid)], g.reset_index(drop=True), check_exact=True)
