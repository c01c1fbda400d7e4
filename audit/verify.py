"""Verification of a run's ledger ``audit.jsonl`` (hash chain, canonical bytes, side files, artifacts).

``verify_ledger(run_dir)`` walks the file line by line. Line ``i`` must be the record with
``seq == i``, its bytes must be exactly the canonical JSON of that record (``audit.canonical``) followed
by ``\\n``, its ``prev_hash`` the previous record's ``hash`` (``GENESIS_HASH`` for ``seq`` 0), its
``hash`` the SHA-256 of the canonical record without ``hash``, its ``run_id`` that of record 0. A
``resume`` record naming a side file (``data["partial"] = {"file", "sha256", "bytes"}``) must match
that file. Every file the run writes is digested in an ``artifact`` record when it is written
(``data = {"key", "path", "sha256", "bytes"}``; a file written again gets a new record and the last
one counts); each digested file must still match its last digest. A ``run_end`` record's
``data["artifacts"]`` (``{relative path: sha256}``, the final state) must match the files too. A
``run_end`` must be the last record (nothing may follow it). The first failure is reported as
``first_bad_seq``: the ``seq`` the failing line should have held (an edited, deleted, reordered or
truncated record, or a reformatted line, all surface there), or the seq of the ``artifact`` record of
an edited or missing file (the message names the file).

What the chain proves, and what it does not:
- without an anchor, a valid chain proves internal consistency: no record was edited, inserted,
  deleted or reordered *unless every later record was rewritten too*. Someone with write access can
  re-chain a ledger from an edited record to the end (or drop the tail and append forged records) and
  it verifies. ``require_run_end=True`` (the CLI default) catches a tail cut at a record boundary;
- with an anchor, the head (``head_seq``, ``head_hash``: the last record's seq and hash, printed by
  ``tournament run`` and ``tournament audit verify``) published or kept out of the writer's reach
  (committed, signed, sent), ``expect_head=HASH`` fails when the ledger no longer ends on that record:
  extended after it, cut before it, or re-chained (the head's hash changes with any earlier byte).

Files in the run directory that no record digests are listed in ``unverified`` (the report folder is
derived from the verified files and always listed there: re-render it with ``tournament report``).
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from audit.canonical import canonical_bytes, parse_line, record_hash
from contracts.enums import RecordType
from contracts.ledger import GENESIS_HASH, LedgerRecord

LEDGER_NAME = "audit.jsonl"
PARTIAL_RE = re.compile(r"^audit\.partial-(\d+)\.jsonl$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of ``verify_ledger``.

    ``n_records``: lines in the file (a trailing partial line counts as one); ``first_bad_seq``: seq
    of the first bad record (None when ok, or when the failure is not tied to a record, e.g. a
    missing file); ``warnings``: non-fatal findings (side files that no resume record names).
    """

    ok: bool
    n_records: int
    first_bad_seq: int | None
    message: str
    warnings: tuple[str, ...] = field(default=())
    #: seq and hash of the last verified record (None when no record verified)
    head_seq: int | None = None
    head_hash: str | None = None
    #: the last record is ``run_end``
    complete: bool = False
    #: files under the run directory that no record digests (relative paths; ``report/`` as one entry)
    unverified: tuple[str, ...] = field(default=())


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def split_lines(raw: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines (without their ``\\n``) and the trailing bytes after the last ``\\n``."""
    if not raw:
        return [], b""
    parts = raw.split(b"\n")
    return parts[:-1], parts[-1]


def check_line(line: bytes, seq: int, prev_hash: str, run_id: str | None) -> tuple[dict | None, str]:
    """Check one complete line as record ``seq``; returns ``(record, "")`` or ``(None, reason)``."""
    try:
        obj = parse_line(line)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"seq {seq}: line is not valid JSON ({exc})"
    if not isinstance(obj, dict):
        return None, f"seq {seq}: line is not a JSON object"
    try:
        LedgerRecord.model_validate(obj)
    except ValidationError as exc:
        return None, f"seq {seq}: not a ledger record: {exc.errors()[0]['msg']}"
    if obj["seq"] != seq:
        return None, f"seq {seq}: line holds seq {obj['seq']} (record deleted, inserted or moved)"
    if canonical_bytes(obj) != line:
        return None, f"seq {seq}: line is not the canonical bytes of its record (reformatted)"
    if obj["prev_hash"] != prev_hash:
        return None, f"seq {seq}: prev_hash does not match the hash of seq {seq - 1}"
    if _body_hash(line, obj) != obj["hash"]:
        return None, f"seq {seq}: hash does not match the record's content (edited)"
    if run_id is not None and obj["run_id"] != run_id:
        return None, f"seq {seq}: run_id {obj['run_id']!r} != {run_id!r} of seq 0"
    return obj, ""


def _body_hash(line: bytes, obj: dict) -> str:
    """``record_hash`` of ``obj`` without its ``hash`` field, from ``line``, the record's canonical bytes
    (checked by the caller): with sorted keys ``"hash"`` directly follows ``"data"``, so the body's
    canonical bytes are the line without ``,"hash":"<hex>"`` (the last such segment: ``data`` cannot
    hold the record's own hash). Same digest as ``record_hash``, without a second JSON encoding."""
    seg = b',"hash":"' + str(obj["hash"]).encode("ascii") + b'"'
    i = line.rfind(seg)
    if i < 0:  # not canonical after all: the slow path gives the honest answer
        return record_hash({k: v for k, v in obj.items() if k != "hash"})
    return hashlib.sha256(line[:i] + line[i + len(seg):]).hexdigest()


def _inside(run_dir: Path, rel: Any) -> Path | None:
    if not isinstance(rel, str) or not rel or os.path.isabs(rel):
        return None
    target = (run_dir / rel).resolve()
    root = run_dir.resolve()
    return target if target == root or root in target.parents else None


def check_side_file(run_dir: Path, record: dict) -> str:
    """A ``resume`` record's side file must exist with the recorded digest and length."""
    partial = record["data"].get("partial")
    if partial is None:
        return ""
    seq = record["seq"]
    if not isinstance(partial, dict) or set(partial) != {"file", "sha256", "bytes"}:
        return f"seq {seq}: resume record's 'partial' is malformed"
    path = _inside(run_dir, partial["file"])
    if path is None or not PARTIAL_RE.match(path.name):
        return f"seq {seq}: side file name {partial['file']!r} is not audit.partial-<n>.jsonl"
    if not path.is_file():
        return f"seq {seq}: side file {partial['file']} is missing"
    if path.stat().st_size != partial["bytes"] or file_sha256(path) != partial["sha256"]:
        return f"seq {seq}: side file {partial['file']} does not match its digest/length"
    return ""


def check_artifacts(run_dir: Path, record: dict) -> str:
    """A ``run_end`` record's artifacts ``{relative path: sha256}`` must match the files."""
    arts = record["data"].get("artifacts", {})
    seq = record["seq"]
    if not isinstance(arts, dict):
        return f"seq {seq}: run_end 'artifacts' is not a mapping"
    for rel in sorted(arts):
        path = _inside(run_dir, rel)
        digest = arts[rel]
        if path is None:
            return f"seq {seq}: artifact path {rel!r} is not inside the run directory"
        if not isinstance(digest, str) or not _HEX64.match(digest):
            return f"seq {seq}: artifact {rel} has no valid sha256"
        if not path.is_file():
            return f"seq {seq}: artifact {rel} is missing"
        if file_sha256(path) != digest:
            return f"seq {seq}: artifact {rel} does not match its sha256"
    return ""


def check_artifact_record(record: dict) -> str:
    """An ``artifact`` record's shape: a relative ``path``, a hex ``sha256`` and ``bytes``."""
    data, seq = record["data"], record["seq"]
    if not isinstance(data.get("path"), str) or not isinstance(data.get("sha256"), str) \
            or not _HEX64.match(data["sha256"]) or not isinstance(data.get("bytes"), int):
        return f"seq {seq}: artifact record is malformed (needs path, sha256, bytes)"
    return ""


def verify_lines(lines: list[bytes], run_dir: Path, *, artifacts: bool = True
                 ) -> tuple[list[dict], int | None, str]:
    """Check complete lines in order; returns (good records, first bad seq or None, message).

    Chain, canonical bytes, side files, the shape of ``artifact`` records, ``run_end`` last; with
    ``artifacts=True`` also ``run_end``'s digests (the per-file ``artifact`` records are checked by
    ``check_artifact_files`` once the whole chain is known, since a later record may supersede one).
    """
    records: list[dict] = []
    prev, run_id = GENESIS_HASH, None
    for seq, line in enumerate(lines):
        rec, err = check_line(line, seq, prev, run_id)
        if rec is None:
            return records, seq, err
        if records and records[-1]["type"] == RecordType.RUN_END.value:
            return records, seq, (f"seq {seq}: record after run_end (seq {seq - 1}): "
                                  "the ledger was extended after the run finished")
        if rec["type"] == RecordType.RESUME.value:
            err = check_side_file(run_dir, rec)
        elif rec["type"] == RecordType.ARTIFACT.value:
            err = check_artifact_record(rec)
        elif rec["type"] == RecordType.RUN_END.value and artifacts:
            err = check_artifacts(run_dir, rec)
        if err:
            return records, seq, err
        records.append(rec)
        prev, run_id = rec["hash"], rec["run_id"]
    return records, None, ""


def latest_artifacts(records: list[dict]) -> dict[str, dict]:
    """The last ``artifact`` record per path (``{path: record}``)."""
    out: dict[str, dict] = {}
    for rec in records:
        if rec["type"] == RecordType.ARTIFACT.value:
            out[rec["data"]["path"]] = rec
    return out


def check_artifact_files(run_dir: Path, records: list[dict]) -> tuple[int | None, str]:
    """Every digested file must match its last ``artifact`` record; returns (seq, message) of the
    first mismatch in ledger order, or (None, "")."""
    for path_rel, rec in sorted(latest_artifacts(records).items(), key=lambda kv: kv[1]["seq"]):
        seq = rec["seq"]
        path = _inside(run_dir, path_rel)
        if path is None:
            return seq, f"seq {seq}: artifact path {path_rel!r} is not inside the run directory"
        if not path.is_file():
            return seq, f"seq {seq}: file {path_rel} is missing (digested by seq {seq})"
        if path.stat().st_size != rec["data"]["bytes"] or file_sha256(path) != rec["data"]["sha256"]:
            return seq, f"seq {seq}: file {path_rel} does not match its sha256 (digested by seq {seq}): edited"
    return None, ""


#: files of a run directory that are never digested: the ledger itself, its side files, temporaries
def _undigestable(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return rel == LEDGER_NAME or bool(PARTIAL_RE.match(rel)) or name.startswith(".")


def unverified_files(run_dir: Path, records: list[dict]) -> tuple[str, ...]:
    """Files under ``run_dir`` that no ``artifact`` record and no ``run_end`` digest names;
    ``report/`` counts as one entry (derived, never digested)."""
    named = set(latest_artifacts(records))
    for rec in records:
        if rec["type"] == RecordType.RUN_END.value and isinstance(rec["data"].get("artifacts"), dict):
            named |= set(rec["data"]["artifacts"])
    out: list[str] = []
    report = False
    for p in sorted(run_dir.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(run_dir).as_posix()
        if rel.startswith("report/"):
            report = True
        elif rel not in named and not _undigestable(rel):
            out.append(rel)
    return tuple((["report/"] if report else []) + out)


def _ledger_path(run_dir: str | os.PathLike) -> tuple[Path, Path]:
    p = Path(run_dir)
    if p.suffix == ".jsonl":
        return p.parent, p
    return p, p / LEDGER_NAME


def load_records(run_dir: str | os.PathLike, *, require_run_end: bool = False,
                 check_files: bool = True) -> list[dict]:
    """Verified records of a run's ledger; raises ``LedgerError`` naming the first bad seq.
    ``check_files=False`` verifies the chain only (not the digests of the run's other files)."""
    from contracts.errors import LedgerError

    report, records = _verify(run_dir, require_run_end=require_run_end, check_files=check_files)
    if not report.ok:
        raise LedgerError(f"ledger of {run_dir} fails verification: {report.message}")
    return records  # verified: every line parsed once, by the verification itself


def verify_ledger(run_dir: str | os.PathLike, *, require_run_end: bool = False,
                  expect_head: str | None = None, check_files: bool = True) -> VerifyReport:
    """Verify ``<run_dir>/audit.jsonl`` (``run_dir`` may also be the ledger file, ``*.jsonl``).

    ``require_run_end``: a ledger whose last record is not ``run_end`` fails (an unfinished or cut
    run); the CLI sets it unless ``--allow-incomplete``. ``expect_head``: the hash (or a prefix of at
    least 12 hex digits) of the record the ledger must end on (see the module docstring).
    ``check_files=False``: the chain, side files and records only, not the other files' digests.
    """
    return _verify(run_dir, require_run_end=require_run_end, expect_head=expect_head,
                   check_files=check_files)[0]


def _verify(run_dir: str | os.PathLike, *, require_run_end: bool = False, expect_head: str | None = None,
            check_files: bool = True) -> tuple[VerifyReport, list[dict]]:
    """``verify_ledger``'s report and the records it parsed (every line's when the report is ok)."""
    root, path = _ledger_path(run_dir)
    if not path.is_file():
        return VerifyReport(False, 0, None, f"ledger {path} is missing"), []
    lines, tail = split_lines(path.read_bytes())
    n_records = len(lines) + (1 if tail else 0)
    records, bad, msg = verify_lines(lines, root, artifacts=check_files)
    warnings = _orphan_side_files(root, records)
    head = (records[-1]["seq"], records[-1]["hash"]) if records else (None, None)
    complete = bool(records) and records[-1]["type"] == RecordType.RUN_END.value

    def report(ok: bool, bad_seq: int | None, message: str) -> tuple[VerifyReport, list[dict]]:
        return VerifyReport(ok, n_records, bad_seq, message, warnings, head[0], head[1], complete,
                            unverified_files(root, records)), records

    if bad is not None:
        return report(False, bad, msg)
    if tail:
        return report(False, len(lines), f"seq {len(lines)}: last line is partial (no trailing newline; "
                                          "truncated or crashed write)")
    bad, msg = check_artifact_files(root, records) if check_files else (None, "")
    if bad is not None:
        return report(False, bad, msg)
    if expect_head is not None:
        pinned = expect_head.strip().lower()
        if len(pinned) < 12 or not re.fullmatch(r"[0-9a-f]+", pinned):
            return report(False, None, f"--expect-head {expect_head!r} is not a hash (>= 12 hex digits)")
        hits = [r["seq"] for r in records if r["hash"].startswith(pinned)]
        if not hits:
            return report(False, len(records), f"pinned head {pinned[:16]} is not in the ledger: the ledger "
                                               "was cut before it or rewritten (head now seq "
                                               f"{head[0]} {str(head[1])[:16]})")
        if hits[-1] != head[0]:
            s0 = hits[-1] + 1
            return report(False, s0, f"seq {s0}: ledger extended after the pinned head (seq {hits[-1]}): "
                                     f"{head[0] - hits[-1]} record(s) appended")
    if require_run_end and not complete:
        failed = next((r for r in reversed(records) if r["type"] == RecordType.WARNING.value
                       and r["data"].get("code") == "run_failed"), None)
        if failed is not None:
            return report(False, len(records), f"seq {len(records)}: run_end missing: the run FAILED (seq "
                                               f"{failed['seq']}: {failed['data'].get('message')})")
        return report(False, len(records), f"seq {len(records)}: run_end missing (run unfinished, "
                                           "killed, or ledger cut)")
    return report(True, None, f"{n_records} records verified")


def _orphan_side_files(root: Path, records: list[dict]) -> tuple[str, ...]:
    named = {r["data"]["partial"]["file"] for r in records
             if r["type"] == RecordType.RESUME.value and isinstance(r["data"].get("partial"), dict)}
    return tuple(f"side file {p.name} is named by no resume record"
                 for p in sorted(root.glob("audit.partial-*.jsonl")) if p.name not in named)
