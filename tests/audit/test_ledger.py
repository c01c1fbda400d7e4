"""LedgerWriter: record layout, hash chain, single writer, resume and crash-partial recovery."""
from __future__ import annotations

import hashlib
import json

import pytest

from audit.canonical import canonical_bytes, record_hash
from audit.ledger import LedgerWriter
from audit.verify import verify_ledger
from contracts.errors import ConfigError, LedgerError
from contracts.ledger import GENESIS_HASH
from tests.audit.conftest import write_run


def test_records_chain_and_are_canonical_lines(tmp_path, clock):
    recs = write_run(tmp_path, clock, n_window_records=3)
    lines = (tmp_path / "audit.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) - 1 == len(recs) == 5
    prev = GENESIS_HASH
    for i, (line, rec) in enumerate(zip(lines, recs)):
        assert line == canonical_bytes(rec)
        assert rec["seq"] == i and rec["prev_hash"] == prev and rec["run_id"] == "run-test"
        body = {k: v for k, v in rec.items() if k != "hash"}
        # independent reference: hashlib over json.dumps with the documented canonical settings
        ref = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
        assert rec["hash"] == hashlib.sha256(ref.encode()).hexdigest() == record_hash(body)
        prev = rec["hash"]
    assert recs[0]["ts"] == "2026-01-01T00:00:00+00:00"
    assert recs[1]["spec_version"] == "4.0-mlops" and recs[1]["type"] == "window"
    report = verify_ledger(tmp_path, require_run_end=True)
    assert report.ok and report.n_records == 5 and report.first_bad_seq is None


def test_nonfinite_value_recorded_as_null_with_flag(tmp_path, clock):
    with LedgerWriter(tmp_path / "audit.jsonl", "r", clock=clock) as w:
        rec = w.append("warning", "run", {"value": float("nan")})
    assert rec["data"] == {"value": None, "_nonfinite": [{"path": "/value", "value": "nan"}]}
    assert verify_ledger(tmp_path).ok


def test_bad_type_or_spec_version_raises(tmp_path, clock):
    with LedgerWriter(tmp_path, "r", clock=clock) as w:
        with pytest.raises(ValueError):
            w.append("not-a-type", "run", {})
        with pytest.raises(ValueError):
            w.append("window", "5.0", {})
        assert w.next_seq == 0


def test_single_writer_and_no_silent_overwrite(tmp_path, clock):
    with LedgerWriter(tmp_path / "audit.jsonl", "r", clock=clock) as w:
        w.append("run_start", "run", {})
        with pytest.raises(LedgerError, match="already holds records"):
            LedgerWriter(tmp_path / "audit.jsonl", "r", clock=clock)
        with pytest.raises(LedgerError, match="held by another"):
            LedgerWriter(tmp_path / "audit.jsonl", "r", resume=True, clock=clock)
    with pytest.raises(LedgerError, match="append after close"):
        w.append("warning", "run", {})
    with pytest.raises(LedgerError, match="does not exist"):
        LedgerWriter(tmp_path / "other" / "audit.jsonl", "r", resume=True)


def _drop_run_end(run_dir):
    lines = (run_dir / "audit.jsonl").read_bytes().splitlines(keepends=True)
    assert b'"type":"run_end"' in lines[-1]
    (run_dir / "audit.jsonl").write_bytes(b"".join(lines[:-1]))


def test_resume_of_a_finished_ledger_is_refused(run_dir, clock):
    raw = (run_dir / "audit.jsonl").read_bytes()
    with pytest.raises(LedgerError, match="the run finished"):
        LedgerWriter(run_dir / "audit.jsonl", "run-test", resume=True, clock=clock)
    assert (run_dir / "audit.jsonl").read_bytes() == raw  # nothing appended


def test_resume_continues_seq_and_prev_hash(run_dir, clock):
    _drop_run_end(run_dir)
    before = verify_ledger(run_dir)
    last = json.loads((run_dir / "audit.jsonl").read_bytes().splitlines()[-1])
    with LedgerWriter(run_dir / "audit.jsonl", "run-test", resume=True, clock=clock,
                      resume_data={"executor": "serial"}) as w:
        assert w.next_seq == before.n_records + 1  # the resume record took seq n
        rec = w.append("window", "3.4", {"window": 9})
    resume = json.loads((run_dir / "audit.jsonl").read_bytes().splitlines()[-2])
    assert resume["type"] == "resume" and resume["prev_hash"] == last["hash"]
    assert resume["data"] == {"partial": None, "resumed_at_seq": before.n_records,
                              "executor": "serial"}
    assert rec["seq"] == before.n_records + 1 and rec["prev_hash"] == resume["hash"]
    assert verify_ledger(run_dir).ok


def test_resume_with_other_run_id_refused(run_dir):
    with pytest.raises(ConfigError, match="run_id"):
        LedgerWriter(run_dir / "audit.jsonl", "another-run", resume=True)


def test_resume_refuses_a_tampered_chain(run_dir):
    path = run_dir / "audit.jsonl"
    path.write_bytes(path.read_bytes().replace(b'"seed":7', b'"seed":8'))
    with pytest.raises(LedgerError, match="first bad seq 0"):
        LedgerWriter(path, "run-test", resume=True)


@pytest.mark.parametrize("cut", [1, 17, -2])
def test_crash_partial_line_moved_aside_on_resume(run_dir, clock, cut):
    """A crash mid-write leaves a last line without newline: it goes to a side file, and the
    resume record carries its SHA-256 and length; the repaired ledger verifies."""
    _drop_run_end(run_dir)  # a crashed run never wrote its run_end
    path = run_dir / "audit.jsonl"
    good = path.read_bytes()
    n_good = good.count(b"\n")
    partial_record = canonical_bytes({"seq": n_good, "type": "window", "data": {"x": 1.25}})
    partial = partial_record[:cut] if cut > 0 else partial_record[:len(partial_record) + cut]
    path.write_bytes(good + partial)
    report = verify_ledger(run_dir)
    assert not report.ok and report.first_bad_seq == n_good and "partial" in report.message

    with LedgerWriter(path, "run-test", resume=True, clock=clock) as w:
        w.append("run_end", "run", {"artifacts": {}})
    side = run_dir / "audit.partial-1.jsonl"
    assert side.read_bytes() == partial
    resume = json.loads(path.read_bytes().splitlines()[n_good])
    assert resume["seq"] == n_good and resume["type"] == "resume"
    assert resume["data"]["partial"] == {"file": "audit.partial-1.jsonl", "bytes": len(partial),
                                         "sha256": hashlib.sha256(partial).hexdigest()}
    assert path.read_bytes().startswith(good)
    assert verify_ledger(run_dir, require_run_end=True).ok

    side.write_bytes(partial + b"x")  # the side file is covered by the chain
    report = verify_ledger(run_dir)
    assert not report.ok and report.first_bad_seq == n_good and "side file" in report.message


def test_unparseable_last_line_with_newline_is_moved_aside(run_dir, clock):
    _drop_run_end(run_dir)  # a crashed run never wrote its run_end
    path = run_dir / "audit.jsonl"
    good = path.read_bytes()
    path.write_bytes(good + b'{"seq":7,"ty\n')
    with LedgerWriter(path, "run-test", resume=True, clock=clock):
        pass
    assert (run_dir / "audit.partial-1.jsonl").read_bytes() == b'{"seq":7,"ty\n'
    assert verify_ledger(run_dir).ok


def test_second_crash_uses_next_side_file(run_dir, clock):
    _drop_run_end(run_dir)  # a crashed run never wrote its run_end
    path = run_dir / "audit.jsonl"
    for n, junk in ((1, b'{"a"'), (2, b'{"b":')):
        path.write_bytes(path.read_bytes() + junk)
        with LedgerWriter(path, "run-test", resume=True, clock=clock):
            pass
        assert (run_dir / f"audit.partial-{n}.jsonl").read_bytes() == junk
    report = verify_ledger(run_dir)
    assert report.ok and report.warnings == ()


def test_orphan_side_file_is_a_warning(run_dir):
    (run_dir / "audit.partial-3.jsonl").write_bytes(b"x")
    report = verify_ledger(run_dir)
    assert report.ok and report.warnings == ("side file audit.partial-3.jsonl is named by no "
                                             "resume record",)


def test_crash_during_the_first_record(tmp_path, clock):
    path = tmp_path / "run" / "audit.jsonl"
    path.parent.mkdir()
    path.write_bytes(b'{"data":{"con')
    with LedgerWriter(path, "run-test", resume=True, clock=clock) as w:
        w.append("run_start", "run", {})
    first = json.loads(path.read_bytes().splitlines()[0])
    assert first["seq"] == 0 and first["prev_hash"] == GENESIS_HASH and first["type"] == "resume"
    assert first["data"]["partial"]["bytes"] == 13
    assert verify_ledger(path.parent).ok


def test_directory_path_creates_audit_jsonl(tmp_path, clock):
    with LedgerWriter(tmp_path / "runs" / "abc", "abc", clock=clock) as w:
        w.append("run_start", "run", {})
    assert (tmp_path / "runs" / "abc" / "audit.jsonl").is_file()
    assert verify_ledger(tmp_path / "runs" / "abc" / "audit.jsonl").ok
