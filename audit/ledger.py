"""The single writer of a run's ledger ``audit.jsonl`` (append-only, hash-chained, fsynced).

One ``LedgerWriter`` owns the file for the life of a run (an exclusive ``flock`` keeps a second
writer out); components hand it events through ``append``. Each record is written as its canonical
bytes plus ``\\n`` (``audit.canonical``) and flushed to the operating system before ``append``
returns.

Durability (group commit): outside a group every ``append`` also fsyncs. Inside ``with
writer.batch():`` the records of the group are written and flushed one by one but fsynced once, when
the outermost group exits (normally or by an exception), or earlier when ``group_max_records``
records are waiting; ``close`` fsyncs what is left. So:

- a crash of the process (``kill -9``, an exception, the OOM killer) loses nothing appended: every
  record was flushed when ``append`` returned; a record being written when it died is a torn last
  line, which a resume moves aside (below);
- an operating-system crash or a power loss can lose the records appended since the last fsync: at
  most the current group (``tournament run`` groups one unit's records, the records of a resumed
  run's reloaded units, and the post-unit phase in groups of at most ``group_max_records``). What
  remains is a verifiable prefix of the chain (possibly with a torn last line). A resumed run
  recomputes whatever the lost records covered: a unit file without its ``artifact`` record is
  recomputed, and the post-unit phase runs again.

Resume (``resume=True``): the existing file is re-verified (chain, canonical bytes, side files;
artifacts are checked by ``verify_ledger`` only) and ``seq``/``prev_hash`` continue from its last
record; a finished ledger (last record ``run_end``) is refused. A partial last line left by a crash (bytes after the last ``\\n``, or a last line that does not
parse as JSON) is moved into the side file ``audit.partial-<n>.jsonl`` in the run directory (``n`` the
smallest unused integer from 1) and a ``resume`` record is appended at once with
``data["partial"] = {"file", "sha256", "bytes"}`` (``None`` when there was nothing to move), plus any
``resume_data`` given. Nothing is silently kept or dropped. A broken chain raises ``LedgerError``.
The side file is written and fsynced before the ledger is truncated; a crash between the two leaves
the bytes in both, the next resume moves them again to the next side file, and ``verify_ledger``
reports the first copy as an unreferenced side file (a warning, not a failure).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import os
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

try:  # POSIX advisory lock; without fcntl the single-writer rule is by convention only.
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX platforms
    fcntl = None  # type: ignore[assignment]

from audit.canonical import canonical_bytes, normalize_data, parse_line
from audit.verify import PARTIAL_RE, split_lines, verify_lines
from contracts.enums import RecordType, SpecVersion
from contracts.errors import ConfigError, LedgerError
from contracts.ledger import GENESIS_HASH, LedgerRecord


def spliced_record(data_bytes: bytes, head: dict[str, Any]) -> tuple[bytes, tuple[bytes, bytes]]:
    """A record's canonical bytes without its ``hash`` (what ``record_hash`` hashes) and its written
    line around the hash, built from its ``data``'s canonical bytes (``data_bytes``) encoded once.

    ``head``: the record's other fields (``prev_hash``, ``run_id``, ``seq``, ``spec_version``, ``ts``,
    ``type``). Canonical JSON sorts keys and ``data`` sorts first, ``hash`` second, so both
    ``canonical_bytes({**head, "data": d})`` and ``canonical_bytes({**head, "data": d, "hash": h})``
    are ``{"data":`` + ``data_bytes`` + the rest: the line is ``line[0] + h + line[1]``. The same
    bytes as encoding the two dicts (``tests/audit/test_ledger_splice.py``), with ``data`` (most of a
    record) encoded once instead of twice."""
    if any(k in head for k in ("data", "hash")) or min(head) < "hash":
        raise ValueError(f"spliced_record: head keys must sort after 'hash', got {sorted(head)}")
    rest = canonical_bytes(head)[1:]  # '"prev_hash":...}'
    return (b'{"data":' + data_bytes + b"," + rest,
            (b'{"data":' + data_bytes + b',"hash":"', b'",' + rest))


def _utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LedgerWriter:
    """Append-only writer of ``audit.jsonl``.

    ``path``: the ledger file (a name ending in ``.jsonl``; its parent is the run directory), or
    else the run directory itself (the file is then ``<path>/audit.jsonl``; created if missing).
    ``resume=False`` refuses a non-empty existing file. ``clock`` returns an aware UTC datetime
    (tests inject a fixed one). Use as a context manager or call ``close()``.
    """

    def __init__(self, path: str | os.PathLike, run_id: str, resume: bool = False, *,
                 resume_data: dict[str, Any] | None = None,
                 clock: Callable[[], _dt.datetime] = _utc_now, group_max_records: int = 1000) -> None:
        p = Path(path)
        self.path = p if p.suffix == ".jsonl" else p / "audit.jsonl"
        self.run_dir = self.path.parent
        if not run_id:
            raise ConfigError("LedgerWriter: run_id must be a non-empty string")
        self.run_id = run_id
        self._clock = clock
        if group_max_records < 1:
            raise ConfigError(f"LedgerWriter: group_max_records must be >= 1, got {group_max_records}")
        self.group_max_records = group_max_records
        self._depth = 0      # open batch() groups (nested groups join the outermost)
        self._unsynced = 0   # records written and flushed since the last fsync
        self._lock = threading.RLock()
        self._seq = 0
        self._prev = GENESIS_HASH
        #: the verified records found on resume (empty for a new ledger)
        self.records: list[dict] = []
        self.run_dir.mkdir(parents=True, exist_ok=True)
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists and not resume:
            raise LedgerError(f"{self.path} already holds records: open it with resume=True")
        if resume and not self.path.exists():
            raise LedgerError(f"cannot resume: {self.path} does not exist")
        created = not self.path.exists()
        self._fh = open(self.path, "ab")
        if created:
            _fsync_dir(self.run_dir)  # the new file's directory entry is durable too
        try:
            self._lock_file()
            partial = self._recover() if resume else None
        except BaseException:
            self._fh.close()
            raise
        if resume:
            data = {"partial": partial, "resumed_at_seq": self._seq}
            for k, v in (resume_data or {}).items():
                if k in data:
                    raise ConfigError(f"resume_data key {k!r} is reserved")
                data[k] = v
            self.append(RecordType.RESUME, SpecVersion.RUN, data)

    # -- file ownership -------------------------------------------------------------------------
    def _lock_file(self) -> None:
        if fcntl is None:
            return
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise LedgerError(f"{self.path} is held by another LedgerWriter") from None

    def _recover(self) -> dict | None:
        raw = self.path.read_bytes()
        lines, tail = split_lines(raw)
        if not tail and lines:
            try:
                parse_line(lines[-1])
            except (ValueError, UnicodeDecodeError):
                tail = lines.pop() + b"\n"   # an unparseable last line counts as partial
        records, bad, msg = verify_lines(lines, self.run_dir, artifacts=False)
        if bad is not None:
            raise LedgerError(f"cannot resume {self.path}: first bad seq {bad}: {msg}")
        if records and records[0]["run_id"] != self.run_id:
            raise ConfigError(f"cannot resume {self.path}: run_id {self.run_id!r} != "
                              f"{records[0]['run_id']!r} of the ledger")
        if records and records[-1]["type"] == RecordType.RUN_END.value:
            raise LedgerError(f"cannot resume {self.path}: the run finished (run_end at seq "
                              f"{records[-1]['seq']}); a finished ledger is never appended to")
        self.records = records
        if records:
            self._seq, self._prev = records[-1]["seq"] + 1, records[-1]["hash"]
        if not tail:
            return None
        side = self._side_file_path()
        with open(side, "xb") as fh:
            fh.write(tail)
            fh.flush()
            os.fsync(fh.fileno())
        _fsync_dir(self.run_dir)
        os.truncate(self.path, len(raw) - len(tail))
        os.fsync(self._fh.fileno())
        return {"file": side.name, "sha256": hashlib.sha256(tail).hexdigest(), "bytes": len(tail)}

    def _side_file_path(self) -> Path:
        used = {int(m.group(1)) for p in self.run_dir.iterdir() if (m := PARTIAL_RE.match(p.name))}
        n = 1
        while n in used:
            n += 1
        return self.run_dir / f"audit.partial-{n}.jsonl"

    # -- writing --------------------------------------------------------------------------------
    @property
    def next_seq(self) -> int:
        """The ``seq`` the next record will get."""
        return self._seq

    @property
    def last_hash(self) -> str:
        """``hash`` of the last record written (``GENESIS_HASH`` before the first)."""
        return self._prev

    def append(self, type: RecordType | str, spec_version: SpecVersion | str,
               data: dict[str, Any]) -> dict[str, Any]:
        """Write one record and return it (as written). ``data`` is normalised canonically."""
        rtype = RecordType(type)
        spec = SpecVersion(spec_version)
        body_data = normalize_data(data)
        with self._lock:
            if self._fh is None or self._fh.closed:
                raise LedgerError(f"{self.path}: append after close")
            ts = self._clock()
            if ts.tzinfo is None:
                raise ConfigError("LedgerWriter clock must return a timezone-aware datetime")
            head = {"seq": self._seq, "ts": ts.astimezone(_dt.timezone.utc).isoformat(),
                    "run_id": self.run_id, "spec_version": spec.value, "type": rtype.value,
                    "prev_hash": self._prev}
            body_bytes, line = spliced_record(canonical_bytes(body_data), head)
            record = {"seq": head["seq"], "ts": head["ts"], "run_id": self.run_id, "spec_version": spec.value,
                      "type": rtype.value, "data": body_data, "prev_hash": self._prev,
                      "hash": hashlib.sha256(body_bytes).hexdigest()}
            LedgerRecord.model_validate(record)
            self._fh.write(line[0] + record["hash"].encode("ascii") + line[1] + b"\n")
            self._fh.flush()
            self._seq += 1
            self._prev = record["hash"]
            self._unsynced += 1
            if self._depth == 0 or self._unsynced >= self.group_max_records:
                self._sync()
        return record

    def _sync(self) -> None:
        if self._unsynced:
            os.fsync(self._fh.fileno())
            self._unsynced = 0

    @contextlib.contextmanager
    def batch(self) -> Iterator["LedgerWriter"]:
        """Group commit: the records appended inside are fsynced once, at the outermost exit (or every
        ``group_max_records`` records); see the module docstring for what a crash can lose."""
        with self._lock:
            self._depth += 1
        try:
            yield self
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0 and self._fh is not None and not self._fh.closed:
                    self._sync()

    def close(self) -> None:
        """Fsync what a group left unsynced and release the file (idempotent)."""
        with self._lock:
            if self._fh is not None and not self._fh.closed:
                self._sync()
                if fcntl is not None:
                    fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
                self._fh.close()

    def __enter__(self) -> "LedgerWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
