"""The stage protocol: declared reads exist, a stage writes only what it declares, the context is
validated at each transition and a breach names the stage and the field."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from market.entropy import EntropyNullCache
from selection.config import SelectionConfig
from selection.pipeline import (
    ConvictionScorer, DiscoveryProvider, FactorBucketizer, FeatureGenerator, HardeningDecision,
    SelectionContext, SelectionController, Stage, StageContractError, StrategySynthesizer, run_stage,
)
from tests.selection.selection_pools import make_view

CFG = SelectionConfig()


def _stages():
    return [DiscoveryProvider(CFG), FeatureGenerator(CFG.feature_lookback), HardeningDecision(CFG),
            ConvictionScorer(CFG), FactorBucketizer(), SelectionController(CFG, 1, "log_mps"),
            SelectionController(CFG, 1, "ridge"), StrategySynthesizer()]


def test_every_stage_writes_only_what_it_declares():
    ctx = SelectionContext(view=make_view(seed=7, n_assets=20), config=CFG,
                           null_cache=EntropyNullCache(n_series=300))
    fields = list(SelectionContext.model_fields)
    for st in _stages():
        assert isinstance(st, Stage)
        assert set(st.reads) <= set(fields) and set(st.writes) <= set(fields)
        new = st(ctx)  # direct call, outside the orchestrator's checks
        changed = {f for f in fields if getattr(new, f) is not getattr(ctx, f)}
        assert changed <= set(st.writes), (st.name, changed - set(st.writes))
        assert "audit_trail" in changed and new.audit_trail[-1]["stage"] == st.name
        ctx = run_stage(st, ctx)
    assert ctx.atoms["log_mps"] and ctx.atoms["ridge"]


@dataclass(frozen=True)
class _Sneaky:
    name: ClassVar[str] = "sneaky"
    reads: ClassVar[tuple[str, ...]] = ("raw_pool",)
    writes: ClassVar[tuple[str, ...]] = ("audit_trail",)

    def __call__(self, ctx):
        return ctx.model_copy(update={"params": {"entropy_max": 2.0},
                                      "audit_trail": ctx.event(self.name, "x", {})})


@dataclass(frozen=True)
class _BadStore:
    name: ClassVar[str] = "badstore"
    reads: ClassVar[tuple[str, ...]] = ("raw_pool",)
    writes: ClassVar[tuple[str, ...]] = ("feature_store", "audit_trail")

    def __call__(self, ctx):
        fs = pd.DataFrame({"momentum": [0.0]}, index=["nobody"])
        return ctx.model_copy(update={"feature_store": fs, "audit_trail": ctx.event(self.name, "x", {})})


@dataclass(frozen=True)
class _Silent:
    name: ClassVar[str] = "silent"
    reads: ClassVar[tuple[str, ...]] = ()
    writes: ClassVar[tuple[str, ...]] = ("audit_trail",)

    def __call__(self, ctx):
        return ctx


@pytest.fixture(scope="module")
def ingested():
    ctx = SelectionContext(view=make_view(seed=7, n_assets=10), config=CFG,
                           null_cache=EntropyNullCache(n_series=300))
    return run_stage(DiscoveryProvider(CFG), ctx)


def test_undeclared_write_fails_naming_stage_and_field(ingested):
    with pytest.raises(StageContractError, match="stage sneaky: wrote 'params'"):
        run_stage(_Sneaky(), ingested)


def test_invalid_write_fails_at_validation(ingested):
    with pytest.raises(StageContractError, match="stage badstore: .*feature_store"):
        run_stage(_BadStore(), ingested)


def test_missing_read_fails_before_the_call(ingested):
    with pytest.raises(StageContractError, match="stage features: reads 'raw_pool'"):
        run_stage(FeatureGenerator(120), SelectionContext(view=ingested.view, config=CFG,
                                                          null_cache=ingested.null_cache))
    with pytest.raises(StageContractError, match="stage partitioning: reads 'vetoes'"):
        run_stage(FactorBucketizer(), ingested)


def test_stage_must_record_an_event(ingested):
    with pytest.raises(StageContractError, match="stage silent: audit_trail"):
        run_stage(_Silent(), ingested)


def test_context_is_frozen_and_unknown_config_keys_refused(ingested):
    with pytest.raises(Exception):
        ingested.raw_pool = None
    with pytest.raises(Exception, match="extra"):
        SelectionConfig(entropy_maximum=0.5)
    with pytest.raises(Exception):
        SelectionConfig(dominant_signal="nonsense")


@pytest.mark.parametrize("mixed", [False, True])
def test_infinite_feature_is_refused_in_float_and_mixed_stores(ingested, mixed):
    """The context refuses an infinite feature whether the store is all float64 (checked in place)
    or holds a non-numeric column too (its numeric columns checked), and accepts the finite store."""
    ctx = run_stage(FeatureGenerator(120), ingested)
    fs = ctx.feature_store.copy()
    if mixed:
        fs["label"] = "x"
    SelectionContext.model_validate({**dict(ctx), "feature_store": fs})
    fs.iloc[1, 0] = np.inf
    with pytest.raises(Exception, match="infinite values"):
        SelectionContext.model_validate({**dict(ctx), "feature_store": fs})
