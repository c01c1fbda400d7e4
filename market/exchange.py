"""An equity-style variant of the synthetic market: exchange calendar (weekday bars only) and an index.

``to_exchange_calendar(market)`` keeps the synthetic market's Monday-to-Friday bars (a Monday's return is
then the close-to-close move since Friday, as on an exchange) and renames its benchmark asset (beta 1,
low idiosyncratic risk) to ``INDEX``, so that a run on it uses the exchange calendar (252 bars a year,
inferred from the data) with an index benchmark, as a user's equity data would. Snapshots keep their
dates (the pool at a cut-off is the latest snapshot at or before it) and their fields, which were derived
from the bars up to each snapshot date (point-in-time either way).
"""
from __future__ import annotations

import dataclasses

import pandas as pd

from market.loaders import MarketData
from market.panel import validate_panel
from market.snapshots import SnapshotStore

INDEX = "INDEX"


def _weekdays(df: pd.DataFrame, rename: dict[str, str]) -> pd.DataFrame:
    return df.loc[df.index.day_of_week < 5].rename(columns=rename)


def to_exchange_calendar(market, index_name: str = INDEX):
    """A copy of a ``market.synthetic.SyntheticMarket`` on weekday bars with its benchmark renamed."""
    rename = {market.benchmark: index_name}
    closes = validate_panel(_weekdays(market.data.closes, rename), source="synthetic-exchange")
    data = MarketData(closes=closes, fields={k: _weekdays(v, rename) for k, v in market.data.fields.items()},
                      source=f"{market.data.source}, exchange calendar")
    frames = {d: f.assign(symbol=f["symbol"].replace(rename)) for d, f in market.snapshots.frames.items()}
    snaps = SnapshotStore(frames=frames, point_in_time=market.snapshots.point_in_time,
                          source=market.snapshots.source, digests=dict(market.snapshots.digests))
    derived = ({k: _weekdays(v, rename) for k, v in market.derived.items()}
               if market.derived is not None else None)
    regimes = market.regimes.loc[market.regimes.index.day_of_week < 5] if market.regimes is not None else None
    events = {**market.events, "benchmark": index_name, "calendar": "exchange (weekday bars of the synthetic market)"}
    return dataclasses.replace(market, data=data, snapshots=snaps, benchmark=index_name, events=events,
                               regimes=regimes, derived=derived)
