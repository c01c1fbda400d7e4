import math

import pandas as pd
import pytest
from pydantic import ValidationError

from contracts import (Allocation, Backend, CellKey, Candidate, Direction, Funnel, Logic, Profile,
                       SimulatorKind, StrategyAtom, Window)
from contracts.schemas import RUN_SCHEMAS, check_frame
from contracts.errors import DataError


def test_window_bars():
    w = Window(index=0, cutoff=251, train_start=0, step_size=20, gap=1, n_test=20)
    assert w.train_length == 252 and w.fill_bar == 252 and w.test_start == 252 and w.test_end == 271
    assert w.train_slice() == slice(0, 252) and w.test_slice() == slice(252, 272)
    with pytest.raises(ValidationError):
        Window(index=0, cutoff=10, train_start=11, step_size=5, n_test=5)
    with pytest.raises(ValidationError):
        Window(index=0, cutoff=10, train_start=0, step_size=5, gap=5, n_test=5)
    with pytest.raises(ValidationError):
        Window(index=0, cutoff=10, train_start=0, step_size=5, n_test=5, extra=1)


def test_atom_id_and_sign():
    a = StrategyAtom(id="BTC_mom_SHORT", symbol="BTCUSDT.P", identity="BTC", direction=Direction.SHORT,
                     logic=Logic.MOM, cluster=0)
    assert a.sign == -1 and a.symbol == "BTCUSDT.P"
    with pytest.raises(ValidationError):
        StrategyAtom(id="BTCUSDT_mom_SHORT", symbol="BTCUSDT", identity="BTC", direction="SHORT",
                     logic="mom", cluster=0)


def test_allocation_validation():
    Allocation(profile=Profile.HRP, backend=Backend.NATIVE, weights={"a": 0.25, "b": 0.75})
    with pytest.raises(ValidationError, match="sum"):
        Allocation(profile=Profile.HRP, backend=Backend.NATIVE, weights={"a": 0.5, "b": 0.4})
    with pytest.raises(ValidationError, match="negative"):
        Allocation(profile=Profile.HRP, backend=Backend.NATIVE, weights={"a": 1.1, "b": -0.1})
    with pytest.raises(ValidationError, match="finite"):
        Allocation(profile=Profile.HRP, backend=Backend.NATIVE, weights={"a": math.nan})
    with pytest.raises(ValidationError, match="empty"):
        Allocation(profile=Profile.HRP, backend=Backend.NATIVE, weights={})
    Allocation(profile=Profile.HRP, backend=Backend.NATIVE, weights={}, status="empty")


def test_cell_key_id_is_stable_and_distinct():
    k = CellKey(engine="v4", profile="hrp", backend="native", simulator="vectorbt", step_size=20,
                train_window=252, feature_lookback=120)
    k2 = CellKey(engine="v4", profile="hrp", backend="native", simulator="reference", step_size=20,
                 train_window=252, feature_lookback=120)
    # literal: sha256 of the canonical dims JSON; a change here is a schema change
    assert k.id == CellKey(**k.dims()).id and k.id.startswith("c") and len(k.id) == 11
    assert k.id != k2.id
    assert k.setting.id == "s20_t252_l120"
    assert k.simulator is SimulatorKind.VECTORBT


def test_candidate_fields_by_scanner_names():
    c = Candidate.model_validate({"symbol": "BTCUSDT", "logic": "mom", "direction": "LONG",
                                  "Value.Traded": 1e9, "Recommend.All": 0.3})
    assert c.as_row()["Value.Traded"] == 1e9
    with pytest.raises(ValidationError):
        Candidate.model_validate({"symbol": "BTCUSDT", "logic": "mom", "Recommend.All": 3.0})
    with pytest.raises(ValidationError):
        Candidate.model_validate({"symbol": "BTCUSDT", "logic": "mom", "unknown": 1})


def test_funnel_invariants():
    f = Funnel(snapshot=10, deduplicated=9, after_hard_vetoes=7, after_all_vetoes_stage1=4,
               winners_by_stage={1: 3, 3: 1}, n_clusters=3)
    assert f.invariant_errors() == [] and f.winners == 4
    bad = Funnel(snapshot=10, deduplicated=11, after_hard_vetoes=7, after_all_vetoes_stage1=8,
                 winners_by_stage={1: 9}, n_clusters=3)
    assert len(bad.invariant_errors()) == 3


def test_check_frame_names_the_column():
    import pandas as pd
    df = pd.DataFrame({"cell_id": ["c1"], "date": [pd.Timestamp("2021-01-01")], "window": [0],
                       "return": [0.01], "liquidated": [False]})
    with pytest.raises(DataError, match="date"):
        check_frame(df, "returns.parquet")  # not tz-aware
    df["date"] = df["date"].dt.tz_localize("UTC")
    out = check_frame(df, "returns.parquet")
    assert list(out.columns) == [c.name for c in RUN_SCHEMAS["returns.parquet"]]


def test_check_frame_keeps_rows_of_a_sliced_frame():
    """A frame filtered out of a larger one keeps its row labels: check_frame must keep its rows by
    position (it aligned them on a new RangeIndex, turning the rows past a gap into NA)."""
    from contracts.schemas import check_frame
    dates = pd.date_range("2024-01-01", periods=6, freq="D", tz="UTC")
    df = pd.DataFrame({"cell_id": ["a", "a", "a", "b", "b", "b"], "date": dates, "window": [0] * 6,
                       "return": [0.01, -0.02, 0.03, 0.0, 0.01, 0.02], "liquidated": [False] * 6})
    sub = df[df["return"] != 0.0]  # labels 0, 1, 2, 4, 5
    out = check_frame(sub, "returns.parquet")
    assert out["cell_id"].tolist() == ["a", "a", "a", "b", "b"]
    assert out["return"].tolist() == [0.01, -0.02, 0.03, 0.01, 0.02]
    assert out["date"].tolist() == list(dates[[0, 1, 2, 4, 5]])
