"""The tamper corpus: every way an adversary with write access to a finished run folder can cut, extend or
edit it, each tried through the CLI in a subprocess on a copy of a real run, each detected with the first
bad seq or the file named (issue "Audit integrity"). Where the chain alone cannot tell (a ledger
re-chained to its end, a forged run_end), the pinned head does: ``--expect-head``."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from audit.canonical import canonical_bytes, parse_line, record_hash

EXE = str(Path(sys.executable).with_name("tournament"))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def run(small_run, tmp_path) -> Path:
    d = tmp_path / small_run.run_dir.name
    shutil.copytree(small_run.run_dir, d)
    return d


def _lines(d: Path) -> list[bytes]:
    return (d / "audit.jsonl").read_bytes().split(b"\n")[:-1]


def _write(d: Path, lines: list[bytes], trailing: bool = True) -> None:
    (d / "audit.jsonl").write_bytes(b"\n".join(lines) + (b"\n" if trailing else b""))


def _rehash(rec: dict, prev_hash: str) -> dict:
    body = {k: v for k, v in rec.items() if k != "hash"}
    body["prev_hash"] = prev_hash
    return {**body, "hash": record_hash(body)}


def _rechain(lines: list[bytes], start: int) -> list[bytes]:
    """Recompute seq, prev_hash and hash of every record from ``start`` on: what a forger with the
    code does to make an edited ledger verify."""
    out = list(lines[:start])
    prev = parse_line(out[-1])["hash"] if out else "0" * 64
    for i, line in enumerate(lines[start:], start=start):
        rec = parse_line(line)
        rec["seq"] = i
        rec = _rehash(rec, prev)
        out.append(canonical_bytes(rec))
        prev = rec["hash"]
    return out


def _seq_of(lines: list[bytes], rtype: str) -> int:
    return next(i for i, x in enumerate(lines) if parse_line(x)["type"] == rtype)


def _head(d: Path) -> str:
    return parse_line(_lines(d)[-1])["hash"]


def _fails_at(out: subprocess.CompletedProcess, seq: int | None = None, file: str | None = None) -> None:
    assert out.returncode == 1, (out.stdout, out.stderr)
    if seq is not None:
        assert f"seq {seq}" in out.stderr, out.stderr
    if file is not None:
        assert file in out.stderr, out.stderr


def test_untouched_run_verifies_and_prints_its_head(run):
    out = _cli("audit", "verify", str(run))
    assert out.returncode == 0, out.stderr
    head = _head(run)
    n = len(_lines(run))
    assert f"head: {n - 1} {head}" in out.stdout and "complete" in out.stdout
    assert "unverified (no digest in the ledger): report/" not in out.stdout  # no report in this run
    assert _cli("audit", "verify", str(run), "--expect-head", head).returncode == 0


def test_edit_a_value_and_recanonicalise_the_line(run):
    lines = _lines(run)
    k = _seq_of(lines, "allocation")
    rec = parse_line(lines[k])
    aid = sorted(rec["data"]["weights"])[0]
    rec["data"]["weights"][aid] += 0.01
    lines[k] = canonical_bytes(rec)  # valid canonical JSON, stale hash
    _write(run, lines)
    _fails_at(_cli("audit", "verify", str(run)), seq=k)


def test_edit_a_value_and_recompute_that_records_hash(run):
    lines = _lines(run)
    k = _seq_of(lines, "selection")
    rec = parse_line(lines[k])
    rec["data"]["htr_stage"] = 4 if rec["data"]["htr_stage"] != 4 else 3
    lines[k] = canonical_bytes(_rehash(rec, rec["prev_hash"]))
    _write(run, lines)
    _fails_at(_cli("audit", "verify", str(run)), seq=k + 1)  # the next record's prev_hash breaks


def test_delete_a_middle_line(run):
    lines = _lines(run)
    m = len(lines) // 2
    del lines[m]
    _write(run, lines)
    _fails_at(_cli("audit", "verify", str(run)), seq=m)  # line m now holds seq m + 1


def test_swap_two_lines(run):
    lines = _lines(run)
    lines[5], lines[9] = lines[9], lines[5]
    _write(run, lines)
    _fails_at(_cli("audit", "verify", str(run)), seq=5)


def test_truncate_mid_line(run):
    raw = (run / "audit.jsonl").read_bytes()
    lines = _lines(run)
    cut = sum(len(x) + 1 for x in lines[:-3]) + 40  # 40 bytes into the third-last record
    (run / "audit.jsonl").write_bytes(raw[:cut])
    _fails_at(_cli("audit", "verify", str(run)), seq=len(lines) - 3)
    _fails_at(_cli("audit", "verify", str(run), "--allow-incomplete"), seq=len(lines) - 3)


@pytest.mark.parametrize("n_dropped", [1, 5])
def test_drop_the_last_lines(run, n_dropped):
    lines = _lines(run)
    head = _head(run)
    _write(run, lines[:-n_dropped])
    out = _cli("audit", "verify", str(run))
    _fails_at(out, seq=len(lines) - n_dropped)
    assert "run_end missing" in out.stderr
    # a user who accepts an unfinished run is told it is one ...
    inc = _cli("audit", "verify", str(run), "--allow-incomplete")
    assert inc.returncode == 0 and "INCOMPLETE" in inc.stdout
    # ... and the pinned head catches the cut either way
    pinned = _cli("audit", "verify", str(run), "--allow-incomplete", "--expect-head", head)
    _fails_at(pinned)
    assert "not in the ledger" in pinned.stderr


def test_drop_run_end_and_edit_a_parquet_file(run):
    lines = _lines(run)
    _write(run, lines[:-1])
    df = pd.read_parquet(run / "returns.parquet")
    df.loc[df.index[3], "return"] += 0.05
    df.to_parquet(run / "returns.parquet", index=False)
    # the file's own artifact record (written with the file, long before run_end) names it, whether or
    # not the user accepts an unfinished run
    _fails_at(_cli("audit", "verify", str(run)), file="returns.parquet")
    out = _cli("audit", "verify", str(run), "--allow-incomplete")
    _fails_at(out, file="returns.parquet")
    rec = _cli("audit", "recompute", str(run), "--allow-incomplete")
    assert rec.returncode == 1 and "returns.parquet" in rec.stderr


def _edit_parquet(run: Path, name: str) -> None:
    df = pd.read_parquet(run / name)
    col = {"returns.parquet": "return", "weights.parquet": "weight", "positions.parquet": "units",
           "exposure.parquet": "net_exposure", "cells.parquet": "sim_sharpe"}.get(name)
    if col is None:  # windows.parquet: move a date by one day
        df.loc[df.index[0], "cutoff"] = df.loc[df.index[0], "cutoff"] + pd.Timedelta(days=1)
    else:
        df.loc[df.index[0], col] = df.loc[df.index[0], col] + 1e-9
    df.to_parquet(run / name, index=False)


def _edit_text(run: Path, rel: str) -> None:
    p = run / rel
    if rel.endswith(".json"):
        doc = json.loads(p.read_text())
        doc["tampered"] = True
        p.write_text(json.dumps(doc, sort_keys=True, indent=1))
    else:  # csv / yaml: one character
        text = p.read_text()
        i = next(i for i, c in enumerate(text) if c.isdigit())
        p.write_text(text[:i] + ("1" if text[i] != "1" else "2") + text[i + 1:])


@pytest.mark.parametrize("name", ["returns.parquet", "weights.parquet", "positions.parquet", "exposure.parquet",
                                  "cells.parquet", "windows.parquet"])
def test_edit_a_parquet_file_with_the_ledger_intact(run, name):
    _edit_parquet(run, name)
    _fails_at(_cli("audit", "verify", str(run)), file=name)


@pytest.mark.parametrize("kind", ["performance_matrix.csv", "bootstrap.json", "config.yaml", "selection", "units"])
def test_edit_a_text_artifact_with_the_ledger_intact(run, kind):
    if kind == "selection":
        rel = sorted(p.relative_to(run).as_posix() for p in run.glob("selection/*/*/portfolio_candidates.json"))[1]
    elif kind == "units":
        rel = sorted(p.relative_to(run).as_posix() for p in run.glob("units/*/*.json"))[1]
    else:
        rel = kind
    _edit_text(run, rel)
    _fails_at(_cli("audit", "verify", str(run)), file=rel)


def test_a_file_deleted_is_named(run):
    rel = sorted(p.relative_to(run).as_posix() for p in run.glob("units/*/*.json"))[0]
    (run / rel).unlink()
    out = _cli("audit", "verify", str(run))
    _fails_at(out, file=rel)
    assert "missing" in out.stderr


def test_append_a_chained_record_after_run_end(run):
    lines = _lines(run)
    head = _head(run)
    last = parse_line(lines[-1])
    forged = _rehash({**last, "seq": last["seq"] + 1, "type": "warning",
                      "data": {"key": "warning:forged", "code": "note", "message": "all fine"}}, last["hash"])
    _write(run, lines + [canonical_bytes(forged)])
    _fails_at(_cli("audit", "verify", str(run)), seq=len(lines))
    _fails_at(_cli("audit", "verify", str(run), "--allow-incomplete", "--expect-head", head), seq=len(lines))


def test_forged_run_end_is_caught_only_by_the_pinned_head(run):
    """Drop the real run_end, append records and a new, correctly chained run_end: the chain verifies
    (the documented limit without an anchor); the head published at the end of the run does not."""
    lines = _lines(run)
    head = _head(run)
    real_end = parse_line(lines[-1])
    prev = parse_line(lines[-2])["hash"]
    note = _rehash({**real_end, "type": "warning", "data": {"key": "warning:x", "code": "note"}}, prev)
    end = _rehash({**real_end, "seq": real_end["seq"] + 1}, note["hash"])
    _write(run, lines[:-1] + [canonical_bytes(note), canonical_bytes(end)])
    assert _cli("audit", "verify", str(run)).returncode == 0
    out = _cli("audit", "verify", str(run), "--expect-head", head)
    _fails_at(out)
    assert "not in the ledger" in out.stderr


def test_rechained_ledger_with_edited_returns_is_caught_by_the_head_and_by_recompute(run):
    """Edit one daily return in a simulation record and re-chain the ledger to its end: the chain
    verifies, but the pinned head fails and ``audit recompute`` names the cell and file that differ."""
    lines = _lines(run)
    head = _head(run)
    k = _seq_of(lines, "simulation")
    rec = parse_line(lines[k])
    cell = sorted(rec["data"]["returns"])[0]
    rec["data"]["returns"][cell][0] += 0.02
    lines[k] = canonical_bytes(rec)
    _write(run, _rechain(lines, k))
    assert _cli("audit", "verify", str(run)).returncode == 0
    _fails_at(_cli("audit", "verify", str(run), "--expect-head", head))
    rec_out = _cli("audit", "recompute", str(run))
    assert rec_out.returncode == 1, rec_out.stdout
    assert "MISMATCH" in rec_out.stderr and cell in rec_out.stderr
    assert "performance_matrix.csv" in rec_out.stderr and "returns.parquet" in rec_out.stderr


def test_recompute_of_an_untouched_run_agrees(run):
    out = _cli("audit", "recompute", str(run))
    assert out.returncode == 0, out.stderr
    assert "ok:" in out.stdout and "match performance_matrix.csv" in out.stdout


def test_recompute_refuses_an_incomplete_run_unless_allowed(run):
    _write(run, _lines(run)[:-1])
    out = _cli("audit", "recompute", str(run))
    assert out.returncode == 1 and "run_end missing" in out.stderr
    assert _cli("audit", "recompute", str(run), "--allow-incomplete").returncode == 0
