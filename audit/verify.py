"""Verification of a run's ledger ``audit.jsonl`` (hash chain, canonical bytes, side files, artifacts).

``verify_ledger(run_dir)`` walks the file line by line. Line ``i`` must be the record with
``seq == i``, its bytes must be exactly the canonical JSON of that record (``audit.canonical``) followed
by ``\\n``, its ``prev_hash`` the previous record's ``hash`` (``GENESIS_HASH`` for ``seq`` 0), its
``hash`` the SHA-256 of the canonical record without ``hash``, its ``run_id`` that of record 0. A
``resume`` record naming a side file (``data["partial"] = {"file", "sha256", "bytes"}``) must match
that file; a ``run_end`` record's ``data["artifacts"]`` (``{relative path: sha256}``) must match the
files under the run directory. The first failure is reported as ``first_bad_seq``: the ``seq`` the
failing line should have held (an edited, deleted, reordered or truncated record, or a reformatted
line, all surface there).

Known limit: a file cut cleanly at a record boundary is a valid shorter chain. Pass
``require_run_end=True`` for a finished run: a last record that is not ``run_end`` then fails at
``first_bad_seq == n_records`` (the missing record).
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
    body = {k: v for k, v in obj.items() if k != "hash"}
    if record_hash(body) != obj["hash"]:
        return None, f"seq {seq}: hash does not match the record's content (edited)"
    if run_id is not None and obj["run_id"] != run_id:
        return None, f"seq {seq}: run_id {obj['run_id']!r} != {run_id!r} of seq 0"
    return obj, ""


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


def verify_lines(lines: list[bytes], run_dir: Path, *, artifacts: bool = True
                 ) -> tuple[list[dict], int | None, str]:
    """Check complete lines in order; returns (good records, first bad seq or None, message)."""
    records: list[dict] = []
    prev, run_id = GENESIS_HASH, None
    for seq, line in enumerate(lines):
        rec, err = check_line(line, seq, prev, run_id)
        if rec is None:
            return records, seq, err
        if rec["type"] == RecordType.RESUME.value:
            err = check_side_file(run_dir, rec)
        elif rec["type"] == RecordType.RUN_END.value and artifacts:
            err = check_artifacts(run_dir, rec)
        if err:
            return records, seq, err
        records.append(rec)
        prev, run_id = rec["hash"], rec["run_id"]
    return records, None, ""


def _ledger_path(run_dir: str | os.PathLike) -> tuple[Path, Path]:
    p = Path(run_dir)
    if p.suffix == ".jsonl":
        return p.parent, p
    return p, p / LEDGER_NAME


def load_records(run_dir: str | os.PathLike) -> list[dict]:
    """Verified records of a run's ledger; raises ``LedgerError`` naming the first bad seq."""
    from contracts.errors import LedgerError

    report = verify_ledger(run_dir)
    if not report.ok:
        raise LedgerError(f"ledger of {run_dir} fails verification: {report.message}")
    _, path = _ledger_path(run_dir)
    lines, _ = split_lines(path.read_bytes())
    return [parse_line(line) for line in lines]


def verify_ledger(run_dir: str | os.PathLike, *, require_run_end: bool = False) -> VerifyReport:
    """Verify ``<run_dir>/audit.jsonl`` (``run_dir`` may also be the ledger file, ``*.jsonl``)."""
    root, path = _ledger_path(run_dir)
    if not path.is_file():
        return VerifyReport(False, 0, None, f"ledger {path} is missing")
    lines, tail = split_lines(path.read_bytes())
    n_records = len(lines) + (1 if tail else 0)
    records, bad, msg = verify_lines(lines, root)
    warnings = _orphan_side_files(root, records)
    if bad is not None:
        return VerifyReport(False, n_records, bad, msg, warnings)
    if tail:
        return VerifyReport(False, n_records, len(lines),
                            f"seq {len(lines)}: last line is partial (no trailing newline; "
                            "truncated or crashed write)", warnings)
    if require_run_end and (not records or records[-1]["type"] != RecordType.RUN_END.value):
        return VerifyReport(False, n_records, len(records),
                            f"seq {len(records)}: run_end missing (ledger truncated?)", warnings)
    return VerifyReport(True, n_records, None, f"{n_records} records verified", warnings)


def _orphan_side_files(root: Path, records: list[dict]) -> tuple[str, ...]:
    named = {r["data"]["partial"]["file"] for r in records
             if r["type"] == RecordType.RESUME.value and isinstance(r["data"].get("partial"), dict)}
    return tuple(f"side file {p.name} is named by no resume record"
                 for p in sorted(root.glob("audit.partial-*.jsonl")) if p.name not in named)
