"""The ``large`` preset (issue 16): 1,000 candidate records over 6 years, every engine and profile on
the native backend at the base setting plus the step-5 sweep."""
from contracts.enums import Backend, Profile
from tournament.config import BASE_ENGINES, load_config
from tournament.run import schedules


def test_large_preset_resolves():
    cfg = load_config(preset="large")
    assert cfg.market.synthetic_candidates == 1000
    assert cfg.market.synthetic_bars == 2190  # 6 years of daily bars (365-day calendar)
    assert cfg.backends == [Backend.NATIVE] and cfg.verification_backends == []
    assert set(cfg.profiles) == set(Profile)
    assert {e for e in cfg.engines if not e.startswith("v4:")} == set(BASE_ENGINES)
    assert [s.step_size for s in cfg.settings()] == [20, 5]
    sched = schedules(cfg, cfg.market.synthetic_bars)
    # first cut-off at bar 251 (train 252): (2190 - 252) / 20 -> 97 base windows, / 5 -> 388 step-5 windows
    assert [len(v) for v in sched.values()] == [97, 388]
    assert len(cfg.cells()) == 5 * 6 * 2 + 5 * 6  # base: both simulators; sweep: the trial simulator
