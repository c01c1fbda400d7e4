"""Ledger record type (the line format of ``audit.jsonl``; the writer lives in ``audit``)."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contracts.enums import RecordType, SpecVersion

#: ``prev_hash`` of the first record.
GENESIS_HASH = "0" * 64


class LedgerRecord(BaseModel):
    """One line of ``audit.jsonl``.

    ``hash`` is the SHA-256 hex digest of the canonical JSON of the record without ``hash``
    (sorted keys, compact separators, shortest round-trip floats, no NaN/inf). ``ts`` is UTC ISO-8601.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = Field(ge=0)
    ts: str
    run_id: str
    spec_version: SpecVersion
    type: RecordType
    data: dict[str, Any]
    prev_hash: str = Field(min_length=64, max_length=64)
    hash: str = Field(min_length=64, max_length=64)
