"""A run caches its derived scanner fields in the cache folder (``tournament.run.cache_dir``), keyed by
the bars' content; the next run on the same market reads them (same results) instead of deriving
again, and the runs folder holds run folders only."""
import pandas as pd

from market.ratings import DerivedCache
from tests.tournament.conftest import small_config
from tournament.market_io import load_market
from tournament.run import CACHE_ENV, cache_dir, run_tournament


def test_second_load_of_the_same_market_hits_the_cache(tmp_path):
    cfg = small_config()
    cache = DerivedCache(tmp_path / "derived")
    a = load_market(cfg.market, derived_cache=cache)
    b = load_market(cfg.market, derived_cache=cache)
    assert (cache.hits, cache.misses) == (1, 1)
    assert a.provenance == b.provenance
    other = small_config(market={"synthetic_bars": 520, "synthetic_candidates": 48, "synthetic_seed": 8})
    load_market(other.market, derived_cache=cache)
    assert (cache.hits, cache.misses) == (1, 2)  # other bars, other key


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "wfaudit"


def test_run_caches_outside_its_runs_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    cfg = small_config(max_windows=1, engines=["raw"], profiles=["equal_weight"], backends=["native"],
                       simulators=["reference"])
    out = run_tournament(cfg, tmp_path / "runs")
    entries = [p for p in (tmp_path / "cache" / "derived").iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [out.run_dir.name]
    again = run_tournament(cfg, tmp_path / "runs")
    for name in ("returns.parquet", "weights.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(out.run_dir / name), pd.read_parquet(again.run_dir / name))
