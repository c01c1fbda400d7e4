"""Load the market a run works on: the embedded synthetic market or a user's data, with provenance."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from contracts.errors import DataError
from market.calendar import Calendar, get_calendar
from market.exchange import to_exchange_calendar
from market.loaders import MarketData, load_lakehouse, load_snapshots, load_wide, panel_digest
from market.ratings import derive_panel, fill_missing_fields
from market.snapshots import SnapshotStore
from market.synthetic import SyntheticConfig, generate
from tournament.config import DataSpec


@dataclass(frozen=True)
class Market:
    """Everything a run reads: panel, snapshots, calendar, benchmark and provenance."""

    data: MarketData
    snapshots: SnapshotStore
    calendar: Calendar
    benchmark: str | None
    provenance: dict = field(default_factory=dict)
    derived: dict | None = None  # derived scanner fields (dates x symbols) when snapshots lack some

    @property
    def closes(self):
        return self.data.closes


def load_market(spec: DataSpec) -> Market:
    """The synthetic market (``spec.data is None``) or the user's folder/file plus candidates.

    A user's snapshots that lack scanner fields get them derived from the bars up to each snapshot's
    date (``market.ratings``). Every candidate symbol must have a price column.
    """
    if spec.data is None:
        syn = generate(SyntheticConfig(seed=spec.synthetic_seed, n_bars=spec.synthetic_bars,
                                       n_candidates=spec.synthetic_candidates,
                                       no_signal=spec.synthetic_no_signal))
        if spec.calendar == "exchange":  # the equity-style variant: weekday bars, an index benchmark
            syn = to_exchange_calendar(syn)
        data, snaps, bench = syn.data, syn.snapshots, syn.benchmark
        prov = {"source": "synthetic", "seed": spec.synthetic_seed, "events": syn.events}
        if spec.synthetic_no_signal:
            prov["no_signal"] = True
        # the same rule as for a user's folder: missing snapshot fields are derived as of the cut-off
        derived = syn.derived if _has_missing_fields(snaps) else None
    else:
        path = Path(spec.data)
        if not path.exists():
            raise DataError(f"{path}: data folder or file not found")
        data = load_lakehouse(path) if path.is_dir() else load_wide(path)
        snaps = load_snapshots(spec.candidates)
        missing = sorted(snaps.symbols() - set(data.closes.columns))
        if missing:
            raise DataError(f"{spec.candidates}: candidate {missing[0]!r} has no price file in {spec.data}"
                            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        derived = _derived_if_needed(data, snaps)
        bench = spec.benchmark
        prov = {"source": str(path), "candidates": str(spec.candidates)}
    cal, cal_source = infer_calendar(data.closes.index, spec.calendar)
    if bench is not None and bench not in data.closes.columns:
        present = list(data.closes.columns)
        raise DataError(f"benchmark symbol {bench!r} (set it with --benchmark or market.benchmark) has no price "
                        f"column in {spec.data or 'the synthetic market'}; symbols present: "
                        f"{', '.join(present[:5])}{' ...' if len(present) > 5 else ''} ({len(present)} in all)")
    prov.update({"panel_sha256": panel_digest(data.closes),
                 "snapshot_sha256": _combined(files := dict(snaps.digests) or _snapshot_content_digests(snaps)),
                 "snapshot_file_sha256": files,
                 "point_in_time": snaps.point_in_time, "n_symbols": int(data.closes.shape[1]),
                 "n_bars": int(data.closes.shape[0]), "first_date": str(data.closes.index[0].date()),
                 "last_date": str(data.closes.index[-1].date()), "calendar": cal.name,
                 "calendar_source": cal_source,
                 "periods_per_year": cal.periods_per_year})
    prov["derived_fields"] = derived is not None
    return Market(data=data, snapshots=snaps, calendar=cal, benchmark=bench, provenance=prov, derived=derived)


#: share of weekend bars above which a panel is taken as 7-day (crypto); an exchange calendar has none
WEEKEND_SHARE_CRYPTO = 0.05


def infer_calendar(index: pd.DatetimeIndex, given: str | None) -> tuple[Calendar, str]:
    """The calendar of a panel: ``given`` when it agrees with the data, else a ``DataError`` naming
    ``--calendar``; inferred when not given (no weekend bar -> ``exchange``, 252 a year; otherwise
    ``crypto``, 365). Returns the calendar and ``"given"`` or ``"inferred"``."""
    weekend = int((index.day_of_week >= 5).sum())
    share = weekend / max(len(index), 1)
    span_days = (index[-1] - index[0]).days if len(index) else 0
    seen = "exchange" if weekend == 0 and span_days >= 14 else "crypto"
    if given is None:
        return get_calendar(seen), "inferred"
    cal = get_calendar(given)
    if given == "crypto" and weekend == 0 and span_days >= 14:
        raise DataError(f"--calendar crypto (365 bars a year) but the data has no weekend bar in {len(index)} bars "
                        f"(weekday-only, like an exchange): pass --calendar exchange (252) or omit it to infer it")
    if given == "exchange" and share > WEEKEND_SHARE_CRYPTO:
        raise DataError(f"--calendar exchange (252 bars a year) but {weekend} of {len(index)} bars fall on a weekend "
                        f"(first {index[index.day_of_week >= 5][0].date()}): pass --calendar crypto (365) or omit it")
    return cal, "given"


def _combined(digests: dict[str, str]) -> str:
    """One SHA-256 over the sorted ``name:digest`` lines of every snapshot."""
    return hashlib.sha256("\n".join(f"{k}:{v}" for k, v in sorted(digests.items())).encode()).hexdigest()


def _snapshot_content_digests(snaps: SnapshotStore) -> dict[str, str]:
    """SHA-256 of each in-memory snapshot's content (the synthetic market has no files to hash)."""
    out = {}
    for d in snaps.dates:
        blob = snaps.frames[d].to_json(orient="split", date_format="iso", double_precision=15).encode()
        out[f"{d.date().isoformat()}.json"] = hashlib.sha256(blob).hexdigest()
    return out


def _derived_if_needed(data: MarketData, snaps: SnapshotStore) -> dict | None:
    """Derived fields for the whole panel when any snapshot misses a scanner field, else None.

    They are filled per window as of the cut-off (``pool_as_of``), never as of a later date.
    """
    if not _has_missing_fields(snaps):
        return None
    return derive_panel(data.closes, data.fields)


def _has_missing_fields(snaps: SnapshotStore) -> bool:
    fields = ["Recommend.All", "Recommend.MA", "ROC", "Volatility.D", "ADX", "Value.Traded"]
    return any(f[fields].isna().any().any() for f in snaps.frames.values())


def pool_as_of(market: Market, view_pool, cutoff_date):
    """The window's pool with missing scanner fields derived from bars up to the cut-off."""
    if market.derived is None:
        return view_pool
    return fill_missing_fields(view_pool, market.derived, cutoff_date)
