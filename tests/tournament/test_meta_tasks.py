"""The meta sleeves' own walk-forwards as tasks on the run's workers (issue 23): queued behind the
units, identical to the walk in the driver."""
import pandas as pd

from tests.tournament.conftest import small_config
from tests.tournament.test_meta_run import META
from tournament import meta_sleeves
from tournament.executors import Session
from tournament.market_io import load_market
from tournament.meta_hooks import submit_sleeves
from tournament.post_tasks import where_task
from tournament.unit import UnitContext


def test_sleeve_walks_run_on_the_workers_and_equal_the_drivers(monkeypatch):
    cfg = small_config(**META)
    market = load_market(cfg.market)
    specs = meta_sleeves.walked_sleeves(cfg)
    # the two reused cells are the run's; the filtered and the synthetic sleeves are walked
    assert [s.name for s in specs] == ["crypto_perp", "equities_v4"]
    ref = {s.name: meta_sleeves.walk_sleeve(cfg, market, s) for s in specs}
    with Session(UnitContext(market=market, config=cfg), "process", workers=2) as session:
        session.map(where_task, [0, 1])  # the workers are forked before the driver's walk is disabled

        def not_here(*a, **kw):
            raise AssertionError("a sleeve was walked forward in the driver")

        monkeypatch.setattr(meta_sleeves, "walk_forward", not_here)
        got = {s.spec.name: s for s in submit_sleeves(session, cfg).result()}
    assert list(got) == list(ref)
    for name, r in ref.items():
        g = got[name]
        pd.testing.assert_series_equal(g.returns, r.returns, check_exact=True)
        pd.testing.assert_series_equal(g.windows, r.windows, check_exact=True)
        pd.testing.assert_series_equal(g.liquidated, r.liquidated, check_exact=True)
        pd.testing.assert_frame_equal(g.weights, r.weights, check_exact=True)
        assert (g.cell, g.reused, g.calendar, g.summary, g.provenance) == \
            (r.cell, r.reused, r.calendar, r.summary, r.provenance)
    # a run without a meta block queues nothing
    assert submit_sleeves(None, small_config()) is None
