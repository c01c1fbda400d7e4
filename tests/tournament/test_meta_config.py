"""The sleeves:/meta: blocks (issue 17): validation and the sleeve pool filter."""
import pytest

from contracts.errors import ConfigError, DataError
from tournament.config import load_config
from tournament.meta_config import SleeveSpec

TWO = [{"name": "a", "engine": "v4", "profile": "hrp"}, {"name": "b", "source": "synthetic", "calendar": "exchange"}]


@pytest.mark.parametrize("over, msg", [
    ({"sleeves": [{"name": "a", "colour": "red"}, TWO[1]]}, "sleeves.0.colour"),
    ({"sleeves": TWO, "meta": {"allocators": ["kelly"]}}, "meta.allocators.0"),
    ({"sleeves": TWO, "meta": {"min_history": 1}}, "meta.min_history"),
    ({"sleeves": TWO[:1]}, "meta needs at least two sleeves"),
    ({"sleeves": TWO, "meta": None}, "sleeves need a meta block"),
    ({"sleeves": [TWO[0], {**TWO[0]}]}, "sleeve names repeat"),
    ({"sleeves": [TWO[0], {"name": "c", "source": "data"}]}, "needs data and candidates"),
    ({"sleeves": [TWO[0], {"name": "c", "engine": "v5"}]}, "unknown engine"),
    ({"sleeves": [TWO[0], {"name": "c", "engine": "v4:nope"}]}, "selection.challengers"),
    ({"sleeves": [TWO[0], {"name": "c", "calendar": "exchange"}]}, "source run takes the run's calendar"),
])
def test_bad_sleeve_and_meta_blocks_name_the_field(over, msg):
    with pytest.raises(ConfigError, match=msg):
        load_config(preset="quick", overrides=over)


def test_quick_preset_has_two_calendars_and_off_switch():
    cfg = load_config(preset="quick")
    assert {s.source for s in cfg.sleeves} == {"run", "synthetic"}
    assert any(s.calendar == "exchange" for s in cfg.sleeves) and len(cfg.meta.allocators) >= 2
    off = load_config(preset="quick", overrides={"sleeves": [], "meta": None})
    assert off.sleeves == [] and off.meta is None


def test_filter_pool_keeps_only_the_asset_type_and_fails_when_empty():
    from tournament.config import DataSpec
    from tournament.market_io import load_market
    from tournament.meta_sleeves import filter_pool

    m = load_market(DataSpec(synthetic_bars=520, synthetic_candidates=48))
    f = filter_pool(m, SleeveSpec(name="p", asset_types=["perp"]))
    sizes = {d: len(x) for d, x in f.snapshots.frames.items()}
    assert sum(sizes.values()) > 0
    for x in f.snapshots.frames.values():
        assert set(x["asset_type"]) <= {"perp"}
    orig = sum((x["asset_type"] == "perp").sum() for x in m.snapshots.frames.values())
    assert sum(sizes.values()) == orig  # nothing else dropped
    assert filter_pool(m, SleeveSpec(name="q")) is m
    with pytest.raises(DataError, match="sleeve 'z': no candidate left"):
        filter_pool(m, SleeveSpec(name="z", sectors=["Nowhere"]))
