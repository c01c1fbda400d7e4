"""Tampering of every kind is caught at the right first bad seq; artifacts are checked."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.ledger import LedgerWriter
from audit.verify import file_sha256, verify_ledger


def _lines(run_dir):
    return (run_dir / "audit.jsonl").read_bytes().split(b"\n")[:-1]


def _write(run_dir, lines, trailing=True):
    (run_dir / "audit.jsonl").write_bytes(b"\n".join(lines) + (b"\n" if trailing else b""))


def test_untouched_ledger_verifies(run_dir):
    report = verify_ledger(run_dir, require_run_end=True)
    assert report.ok and report.n_records == 7 and report.first_bad_seq is None


@pytest.mark.parametrize("seq", [0, 3, 6])
def test_edit_one_byte_in_data(run_dir, seq):
    lines = _lines(run_dir)
    i = lines[seq].index(b'"data":{') + len(b'"data":{"')
    line = bytearray(lines[seq])
    line[i] = ord("Z") if line[i] != ord("Z") else ord("Y")  # a key letter changes: still valid JSON
    lines[seq] = bytes(line)
    _write(run_dir, lines)
    report = verify_ledger(run_dir)
    assert not report.ok and report.first_bad_seq == seq, report.message


@pytest.mark.parametrize("field", [b'"hash":"', b'"prev_hash":"', b'"ts":"2026-01-01T00:00:0'])
def test_edit_one_byte_in_envelope(run_dir, field):
    lines = _lines(run_dir)
    line = bytearray(lines[4])
    i = lines[4].index(field) + len(field)
    line[i] = ord("a") if line[i] != ord("a") else ord("b")
    lines[4] = bytes(line)
    _write(run_dir, lines)
    assert verify_ledger(run_dir).first_bad_seq == 4


def test_edit_a_number_keeps_json_valid_but_breaks_the_hash(run_dir):
    lines = _lines(run_dir)
    assert b'"window":2' in lines[3]
    lines[3] = lines[3].replace(b'"window":2', b'"window":3')
    _write(run_dir, lines)
    report = verify_ledger(run_dir)
    assert report.first_bad_seq == 3 and "hash" in report.message


def test_a_number_edited_to_overflow_is_reported_not_raised(run_dir):
    # found by the single-byte property: one byte turns an exponent into e.g. 1e999, which Python's
    # json reads as inf; verify must report that line, not crash on re-encoding it
    lines = _lines(run_dir)
    assert b'"window":2' in lines[3]
    lines[3] = lines[3].replace(b'"window":2', b'"window":2e999')
    _write(run_dir, lines)
    report = verify_ledger(run_dir)
    assert not report.ok and report.first_bad_seq == 3 and "float range" in report.message


@pytest.mark.parametrize("seq", [0, 2, 6])
def test_delete_a_record(run_dir, seq):
    lines = _lines(run_dir)
    del lines[seq]
    _write(run_dir, lines)
    report = verify_ledger(run_dir)
    if seq == 6:  # deleting the last record leaves a valid shorter chain: only run_end catches it
        assert report.ok
        report = verify_ledger(run_dir, require_run_end=True)
    assert not report.ok and report.first_bad_seq == seq, report.message


def test_reorder_two_records(run_dir):
    lines = _lines(run_dir)
    lines[2], lines[4] = lines[4], lines[2]
    _write(run_dir, lines)
    report = verify_ledger(run_dir)
    assert report.first_bad_seq == 2 and not report.ok


def test_reorder_with_renumbered_seq_still_caught(run_dir):
    """Swap two records and fix their seq fields: the hashes no longer match."""
    lines = _lines(run_dir)
    a, b = json.loads(lines[2]), json.loads(lines[3])
    a["seq"], b["seq"] = 3, 2
    dump = lambda o: json.dumps(o, sort_keys=True, separators=(",", ":")).encode()  # noqa: E731
    lines[2], lines[3] = dump(b), dump(a)
    _write(run_dir, lines)
    assert verify_ledger(run_dir).first_bad_seq == 2


@pytest.mark.parametrize("keep", [1, 40])
def test_truncate_mid_record(run_dir, keep):
    lines = _lines(run_dir)
    lines[5] = lines[5][:keep]
    _write(run_dir, lines[:6], trailing=False)
    report = verify_ledger(run_dir)
    assert not report.ok and report.first_bad_seq == 5 and report.n_records == 6


def test_truncate_with_newline_kept(run_dir):
    lines = _lines(run_dir)
    lines[5] = lines[5][:30]
    _write(run_dir, lines[:6])
    assert verify_ledger(run_dir).first_bad_seq == 5


@pytest.mark.parametrize("reformat", [
    lambda o: json.dumps(o, sort_keys=True).encode(),                       # default separators
    lambda o: json.dumps(o, sort_keys=True, separators=(",", ":")).encode() + b" ",  # trailing space
    lambda o: json.dumps(o, separators=(",", ":")).encode(),               # key order changed
])
def test_whitespace_or_format_edit_is_tampering(run_dir, reformat):
    lines = _lines(run_dir)
    obj = json.loads(lines[3])
    obj = dict(reversed(list(obj.items())))
    new = reformat(obj)
    assert new != lines[3] and json.loads(new) == json.loads(lines[3])  # same record, other bytes
    lines[3] = new
    _write(run_dir, lines)
    report = verify_ledger(run_dir)
    assert report.first_bad_seq == 3 and "canonical" in report.message


def test_crlf_line_ending_is_tampering(run_dir):
    lines = _lines(run_dir)
    lines[1] += b"\r"
    _write(run_dir, lines)
    assert verify_ledger(run_dir).first_bad_seq == 1


def test_missing_ledger(tmp_path):
    report = verify_ledger(tmp_path)
    assert not report.ok and report.first_bad_seq is None and "missing" in report.message


def test_artifacts_listed_in_run_end_are_checked(tmp_path, clock):
    (tmp_path / "returns.parquet").write_bytes(b"PAR1 data")
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "index.html").write_text("<html></html>")
    arts = {p: file_sha256(tmp_path / p) for p in ("returns.parquet", "report/index.html")}
    with LedgerWriter(tmp_path, "r", clock=clock) as w:
        w.append("run_start", "run", {})
        w.append("run_end", "run", {"artifacts": arts})
    assert verify_ledger(tmp_path, require_run_end=True).ok
    (tmp_path / "report" / "index.html").write_text("<html>edited</html>")
    report = verify_ledger(tmp_path)
    assert report.first_bad_seq == 1 and "report/index.html" in report.message
    (tmp_path / "report" / "index.html").unlink()
    assert "missing" in verify_ledger(tmp_path).message


def test_artifact_path_outside_run_dir_rejected(tmp_path, clock):
    with LedgerWriter(tmp_path / "audit.jsonl", "r", clock=clock) as w:
        w.append("run_end", "run", {"artifacts": {"../x": "0" * 64}})
    assert "not inside" in verify_ledger(tmp_path).message


def test_file_sha256_matches_hashlib(tmp_path):
    import hashlib
    data = bytes(range(256)) * 5000  # > 1 MiB chunk
    (tmp_path / "f").write_bytes(data)
    assert file_sha256(tmp_path / "f") == hashlib.sha256(data).hexdigest()


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_single_byte_change_is_caught_at_its_line(tmp_path_factory, data):
    """Property: changing any one byte of the file (newlines included) is caught, and the first bad
    seq is the index of the line holding that byte."""
    from tests.audit.conftest import FixedClock, write_run
    d = tmp_path_factory.mktemp("prop")
    write_run(d, FixedClock(), n_window_records=3)
    path = d / "audit.jsonl"
    raw = bytearray(path.read_bytes())
    pos = data.draw(st.integers(0, len(raw) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != raw[pos]))
    line_of_pos = raw[:pos].count(b"\n")
    raw[pos] = new
    path.write_bytes(bytes(raw))
    report = verify_ledger(d)
    assert not report.ok and report.first_bad_seq == line_of_pos, report.message


def test_deleted_side_file_is_caught(run_dir):
    lines = (run_dir / "audit.jsonl").read_bytes().splitlines(keepends=True)
    (run_dir / "audit.jsonl").write_bytes(b"".join(lines[:-1]))  # a crashed run has no run_end
    path = run_dir / "audit.jsonl"
    n = path.read_bytes().count(b"\n")
    path.write_bytes(path.read_bytes() + b'{"partial')
    with LedgerWriter(path, "run-test", resume=True):
        pass
    (run_dir / "audit.partial-1.jsonl").unlink()
    report = verify_ledger(run_dir)
    assert report.first_bad_seq == n and "missing" in report.message


def test_body_hash_from_the_line_equals_record_hash(tmp_path, clock):
    """verify hashes a record's body from its canonical line (no second JSON encoding): the digest is
    record_hash's, also when the data holds text that looks like a hash field."""
    from audit.canonical import record_hash
    from audit.verify import _body_hash
    with LedgerWriter(tmp_path, "h", clock=clock) as w:
        w.append("run_start", "run", {"note": ',"hash":"' + "0" * 64 + '"', "hash": "x"})
        w.append("run_end", "run", {"artifacts": {}})
    for line in _lines(tmp_path):
        obj = json.loads(line)
        assert _body_hash(line, obj) == record_hash({k: v for k, v in obj.items() if k != "hash"}) == obj["hash"]
    assert verify_ledger(tmp_path, require_run_end=True).ok
