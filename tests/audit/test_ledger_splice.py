"""The ledger writes each record's ``data`` encoded once (``audit.ledger.spliced_record``, issue 23):
the written lines and hashes must be those of encoding the whole record twice, as the writer did
before (``canonical_bytes(record)``, ``record_hash(body)``), on records of every shape."""
from __future__ import annotations

import datetime as _dt
import json

import pytest

from audit.canonical import canonical_bytes, normalize_data, record_hash
from audit.ledger import LedgerWriter, spliced_record
from audit.verify import verify_ledger

FIXED = _dt.datetime(2026, 12, 6, 21, 0, tzinfo=_dt.timezone.utc)

DATA = [
    {},
    {"a": 1},
    {"z": [1, 2.5, None, True, "x"], "a": {"nested": {"k": -0.0, "u": "\u00e9\u4e2d\U0001f600"}}},
    {"hash": "not the record's", "data": {"data": 1}, "prev_hash": 3, "seq": "s"},  # keys named like fields
    {"x": float("nan"), "y": [float("inf"), 1e-300, 1e300]},  # non-finite: nulled and listed
    {1: "int key", "b": [[], {}, [{}]], "q": 'quote " and \\ backslash\n'},
    {"big": list(range(2000)), "f": [0.1 * i for i in range(500)]},
]


def _old_line(seq, prev, data, run_id="rid", typ="warning", spec="run"):
    body = {"seq": seq, "ts": FIXED.isoformat(), "run_id": run_id, "spec_version": spec, "type": typ,
            "data": normalize_data(data), "prev_hash": prev}
    rec = {**body, "hash": record_hash(body)}
    return canonical_bytes(rec) + b"\n", rec


def test_lines_and_hashes_equal_the_double_encoding(tmp_path):
    w = LedgerWriter(tmp_path / "audit.jsonl", "rid", clock=lambda: FIXED)
    spec = w.append("run_start", "run", {"config": {"a": 1}})["spec_version"]
    expected = [canonical_bytes(json.loads((tmp_path / "audit.jsonl").read_bytes()))]
    prev = w.last_hash
    for i, d in enumerate(DATA):
        rec = w.append("warning", spec, d)
        line, old = _old_line(i + 1, prev, d, spec=spec)
        assert rec == old and list(rec) == list(old)  # same record, same key order
        expected.append(line.rstrip(b"\n"))
        prev = rec["hash"]
    w.close()
    got = (tmp_path / "audit.jsonl").read_bytes().split(b"\n")[:-1]
    assert got == expected
    assert verify_ledger(tmp_path).ok


def test_head_must_sort_after_hash():
    with pytest.raises(ValueError, match="sort after 'hash'"):
        spliced_record(b"{}", {"alpha": 1, "seq": 0})
    with pytest.raises(ValueError):
        spliced_record(b"{}", {"data": 1})
