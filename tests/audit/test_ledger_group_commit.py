"""Group commit of the ledger (``LedgerWriter.batch``): records are written and flushed one by one,
fsynced once per group; a process killed mid-group leaves a verifiable prefix holding every record
appended before the kill."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import audit.ledger as ledger_mod
from audit.canonical import normalize, normalize_data
from audit.ledger import LedgerWriter
from audit.verify import verify_ledger
from contracts.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fsyncs(monkeypatch):
    """Counts ``os.fsync`` calls made by the ledger module, by file descriptor."""
    calls: list[int] = []
    real = os.fsync

    def counting(fd):
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(ledger_mod.os, "fsync", counting)
    return calls


def test_a_group_is_fsynced_once_at_its_end(tmp_path, clock, fsyncs):
    with LedgerWriter(tmp_path / "audit.jsonl", "r", clock=clock) as w:
        fd = w._fh.fileno()
        w.append("run_start", "run", {"key": "run_start"})
        assert fsyncs.count(fd) == 1                   # outside a group: every append
        with w.batch():
            for k in range(50):
                w.append("window", "run", {"key": f"window:{k}", "x": k / 3})
                # written and flushed at once (a process crash loses nothing), not yet fsynced
                assert (tmp_path / "audit.jsonl").read_bytes().count(b"\n") == k + 2
            assert fsyncs.count(fd) == 1
            with w.batch():                            # a nested group joins the outer one
                w.append("window", "run", {"key": "window:nested"})
            assert fsyncs.count(fd) == 1
        assert fsyncs.count(fd) == 2                   # one fsync for the 51 records of the group
        with w.batch():
            pass
        assert fsyncs.count(fd) == 2                   # an empty group costs nothing
    assert verify_ledger(tmp_path).ok


def test_a_group_is_fsynced_every_group_max_records_and_at_close(tmp_path, clock, fsyncs):
    w = LedgerWriter(tmp_path / "audit.jsonl", "r", clock=clock, group_max_records=10)
    fd = w._fh.fileno()
    with w.batch():
        for k in range(25):
            w.append("window", "run", {"key": f"window:{k}"})
        assert fsyncs.count(fd) == 2                   # after records 10 and 20
        w.close()                                      # close inside a group fsyncs the last 5
        assert fsyncs.count(fd) == 3
    assert fsyncs.count(fd) == 3
    with pytest.raises(ConfigError, match="group_max_records"):
        LedgerWriter(tmp_path / "other.jsonl", "r", group_max_records=0)


def test_a_group_left_by_an_exception_is_fsynced(tmp_path, clock, fsyncs):
    with LedgerWriter(tmp_path / "audit.jsonl", "r", clock=clock) as w:
        fd = w._fh.fileno()
        with pytest.raises(RuntimeError):
            with w.batch():
                w.append("window", "run", {"key": "a"})
                raise RuntimeError("boom")
        assert fsyncs.count(fd) == 1


def test_a_kill_mid_group_leaves_a_verifiable_prefix(tmp_path):
    """SIGKILL inside a group, after 3 + 7 records: all 10 are in the file and the chain verifies
    (incomplete: no run_end); a resume continues it."""
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        from audit.ledger import LedgerWriter
        w = LedgerWriter({str(tmp_path / 'audit.jsonl')!r}, "r")
        w.append("run_start", "run", {{"key": "run_start"}})
        for k in range(2):
            w.append("window", "run", {{"key": f"window:{{k}}"}})
        with w.batch():
            for k in range(7):
                w.append("selection", "run", {{"key": f"selection:{{k}}", "x": k / 7}})
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    rep = verify_ledger(tmp_path)
    assert rep.ok and rep.n_records == 10, rep.message
    with LedgerWriter(tmp_path / "audit.jsonl", "r", resume=True) as w:
        assert w.next_seq == 11                        # 10 records and the resume record
        assert w.records[-1]["data"]["key"] == "selection:6"
    assert verify_ledger(tmp_path).ok


# -- the fast pass of normalize_data (plain JSON data) gives normalize's output -----------------------

@pytest.mark.parametrize("data", [
    {"a": 1, "b": [1.5, "x", None, True, {"c": (1, 2)}], "d": {3: 4, "e": 0.1}},
    {"w": {"AAA_trend_LONG": 0.25, "BBB_trend_SHORT": 0.75}, "stage": 3, "ok": False},
    {"nested": [[{"k": [0.0, -0.0, 1e-300]}]]},
])
def test_fast_pass_equals_the_full_normalisation(data):
    assert normalize_data(data) == normalize(data, "", [])


def test_fast_pass_defers_to_the_full_normalisation():
    import numpy as np
    # a non-finite float deep inside: listed with its JSON Pointer, as before
    out = normalize_data({"x": {"y/z": [1.0, float("inf")]}})
    assert out == {"x": {"y/z": [1.0, None]}, "_nonfinite": [{"path": "/x/y~1z/1", "value": "inf"}]}
    # numpy leaves and keys convert as before
    assert normalize_data({"a": np.float64(0.5), np.int64(2): np.arange(2)}) == {"a": 0.5, "2": [0, 1]}
    # bad keys still raise, naming the path
    with pytest.raises(DataError, match="ledger keys must be strings"):
        normalize_data({"a": {True: 1}})
    with pytest.raises(DataError, match="duplicate key '1' at /a"):
        normalize_data({"a": {1: 1, "1": 2}})
