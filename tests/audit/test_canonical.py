"""Canonical JSON: sorted keys, compact, shortest round-trip floats, non-finite flagged."""
from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.canonical import canonical_bytes, normalize_data, parse_line, record_hash
from contracts.enums import Direction
from contracts.errors import DataError


def test_layout_sorted_compact_ascii():
    assert canonical_bytes({"b": 1, "a": [1.5, "é"]}) == b'{"a":[1.5,"\\u00e9"],"b":1}'


def test_numpy_pandas_enum_conversion():
    data = normalize_data({
        "i": np.int64(3), "f": np.float32(0.5), "b": np.bool_(True), "arr": np.array([[1, 2]]),
        "ts": pd.Timestamp("2024-03-01", tz="UTC"), "d": dt.date(2024, 3, 1),
        "e": Direction.SHORT, 4: "int key",
    })
    assert data == {"i": 3, "f": 0.5, "b": True, "arr": [[1, 2]],
                    "ts": "2024-03-01T00:00:00+00:00", "d": "2024-03-01", "e": "SHORT",
                    "4": "int key"}
    assert type(data["i"]) is int and type(data["f"]) is float


def test_nonfinite_nulled_and_listed_with_json_pointer():
    data = normalize_data({"returns": {"c/1": [0.1, float("nan")]}, "x": np.inf, "y": -np.inf})
    assert data["returns"]["c/1"] == [0.1, None]
    assert data["x"] is None and data["y"] is None
    assert data["_nonfinite"] == [{"path": "/returns/c~11/1", "value": "nan"},
                                  {"path": "/x", "value": "inf"},
                                  {"path": "/y", "value": "-inf"}]
    with pytest.raises(DataError):
        canonical_bytes({"x": math.nan})


def test_reserved_and_bad_keys_raise():
    with pytest.raises(DataError, match="reserved"):
        normalize_data({"_nonfinite": []})
    with pytest.raises(DataError, match="keys must be strings"):
        normalize_data({(1, 2): 0})
    with pytest.raises(DataError, match="cannot encode"):
        normalize_data({"s": {1, 2}})


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_shortest_round_trip(x):
    raw = canonical_bytes({"x": x})
    assert raw == b'{"x":' + repr(x).encode() + b"}"
    back = parse_line(raw)["x"]
    assert back == x and math.copysign(1, back) == math.copysign(1, x)


def test_record_hash_is_sha256_of_canonical_bytes():
    import hashlib
    body = {"seq": 0, "data": {"b": 2.0, "a": 1}}
    assert record_hash(body) == hashlib.sha256(b'{"data":{"a":1,"b":2.0},"seq":0}').hexdigest()


def test_parse_rejects_nan_constant():
    with pytest.raises(ValueError):
        parse_line(b'{"x":NaN}')
    assert json.loads('{"x":1}') == parse_line(b'{"x":1}')


def test_nat_and_frames_rejected():
    with pytest.raises(DataError, match="NaT at /t"):
        normalize_data({"t": pd.NaT})
    with pytest.raises(DataError, match="cannot encode DataFrame at /f"):
        normalize_data({"f": pd.DataFrame()})
