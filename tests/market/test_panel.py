"""validate_panel checks only the columns that break a rule (``_faulty``, all columns at once)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from contracts.errors import DataError
from market.panel import _check_column, _faulty, validate_panel


def _panel(rng: np.random.Generator, n: int = 60, k: int = 12) -> np.ndarray:
    v = rng.uniform(1.0, 2.0, size=(n, k))
    for j in range(k):  # each column gets zero or more faults, or a legal shape
        kind = rng.integers(0, 10)
        i = int(rng.integers(0, n))
        if kind == 0:
            v[i, j] = np.inf if rng.random() < 0.5 else -np.inf
        elif kind == 1:
            v[i, j] = -rng.uniform(0.1, 1.0)
        elif kind == 2:
            v[:, j] = np.nan
        elif kind == 3:
            v[i, j] = np.nan  # a gap unless at an end
        elif kind == 4:
            v[i:, j] = np.nan  # delisted (legal)
            v[: int(rng.integers(0, i + 1)), j] = np.nan  # listed late (legal)
        elif kind == 5:
            v[i, j] = 0.0  # legal only as the last price
            if rng.random() < 0.5:
                v[i + 1:, j] = np.nan
        elif kind == 6:
            v[-1, j] = 0.0  # a bust at the end (legal)
    return v


def _loop(values: np.ndarray, idx: pd.DatetimeIndex) -> list[bool]:
    out = []
    for j in range(values.shape[1]):
        try:
            _check_column(values[:, j], idx, "c")
            out.append(False)
        except DataError:
            out.append(True)
    return out


def test_faulty_columns_are_the_ones_check_column_refuses():
    rng = np.random.default_rng(11)
    idx = pd.date_range("2024-01-01", periods=60, freq="D", tz="UTC")
    seen = set()
    for _ in range(400):
        v = _panel(rng)
        ref = _loop(v, idx)
        assert _faulty(v).tolist() == ref
        seen |= set(ref)
    assert seen == {True, False}


def test_validate_panel_raises_the_first_columns_error_as_before():
    rng = np.random.default_rng(12)
    idx = pd.date_range("2024-01-01", periods=60, freq="D", tz="UTC")
    raised = 0
    for t in range(200):
        v = _panel(rng, k=2 if t % 2 else 12)  # narrow panels are often clean
        frame = pd.DataFrame(v, index=idx, columns=[f"S{j}" for j in range(v.shape[1])])
        expected = None
        for j, sym in enumerate(frame.columns):  # the previous loop over every column
            try:
                _check_column(v[:, j], idx, f"t: symbol {sym!r}")
            except DataError as exc:
                expected = str(exc)
                break
        if expected is None:
            out = validate_panel(frame, source="t")
            assert np.array_equal(out.to_numpy(), v, equal_nan=True)
        else:
            raised += 1
            with pytest.raises(DataError) as info:
                validate_panel(frame, source="t")
            assert str(info.value) == expected
    assert 0 < raised < 200
