"""What a worker hands the driver for one unit: its files' bytes, its ledger records and its slim result.

The driver of a run persists units while the workers compute the next ones; on two cores every
driver CPU-second is taken from a worker. So the per-unit serialisation runs where the unit ran (any
executor: serial, process, Dask), and the driver only writes bytes, digests them and appends records:

- ``unit_bytes``: ``units/<setting>/<k>.json``, ``UnitResult.to_json()`` as compact JSON
  (``tournament.rundir.encode_json``: sorted keys, no whitespace, by the C encoder);
- ``candidates_bytes``: ``selection/<setting>/<k>/portfolio_candidates.json``
  (``selection.output.portfolio_candidates``' document, same encoding);
- ``records``: the unit's ledger records (``tournament.records.unit_records``) as plain data (the
  driver's ``LedgerWriter.append`` normalises them again, on its fast path for plain JSON);
- ``result``: the slim ``UnitResult`` the post-unit phase reads (``UnitResult.slim``), rebuilt from
  the unit's JSON as a resumed run rebuilds it from the file.

Every field is a pure function of the unit's result and the market's dates: the same on every
executor and worker count.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.enums import RecordType, SpecVersion
from selection.output import portfolio_candidates, portfolio_candidates_json
from tournament.records import unit_records
from tournament.rundir import encode_json
from tournament.unit import UnitKey, UnitResult, slim_json


@dataclass(frozen=True)
class UnitOutput:
    """One finished unit as the driver receives it (module docstring)."""

    key: UnitKey
    unit_bytes: bytes
    candidates_bytes: bytes
    #: ``(record type, spec version, data)`` in ledger order
    records: tuple[tuple[RecordType, SpecVersion, dict[str, Any]], ...]
    result: UnitResult


def unit_output(res: UnitResult, dates) -> UnitOutput:
    """Encode one unit's files and records (in the worker that ran it); ``dates`` the market's bar
    dates (``Market.closes.index``)."""
    d = res.to_json()
    unit_bytes = encode_json(d)
    try:
        candidates_bytes = encode_json(portfolio_candidates_json(d["selections"]))
    except ValueError:  # a non-finite float: the model path replaces it by null (selection.output)
        candidates_bytes = encode_json(portfolio_candidates(res.selections))
    records = tuple(unit_records(res, dates))
    return UnitOutput(key=res.key, unit_bytes=unit_bytes, candidates_bytes=candidates_bytes, records=records,
                      result=UnitResult.from_json(slim_json(d)))
