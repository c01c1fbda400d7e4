"""Resume trusts nothing unverified: a finished run is never resumed, a unit file that does not match its
ledger digest is recomputed (and the recomputation recorded), a torn last line is moved aside and the run
completes, and only options that do not change results may be given on the command line."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from audit.verify import verify_ledger
from tests.tournament.conftest import small_config

EXE = str(Path(sys.executable).with_name("tournament"))


def _cli(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout)


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_resume_of_a_finished_run_is_refused_and_changes_nothing(small_run, tmp_path):
    d = tmp_path / small_run.run_dir.name
    shutil.copytree(small_run.run_dir, d)
    unit = sorted(d.glob("units/*/*.json"))[0]
    doc = json.loads(unit.read_text())
    key = next(k for k, a in doc["allocations"].items() if a["weights"])
    aid = sorted(doc["allocations"][key]["weights"])[0]
    doc["allocations"][key]["weights"][aid] += 0.05   # a weight swapped in a unit of a finished run
    unit.write_text(json.dumps(doc))
    before = _snapshot(d)
    out = _cli("run", "--resume", str(d), "--no-report")
    assert out.returncode == 2 and "the run finished" in out.stderr, (out.stdout, out.stderr)
    assert _snapshot(d) == before                     # no file rewritten, no record appended
    rep = verify_ledger(d, require_run_end=True)
    assert not rep.ok and unit.relative_to(d).as_posix() in rep.message


@pytest.fixture
def unfinished(tmp_path) -> Path:
    """A run stopped after 2 of its 3 units, with `report: true` in its config."""
    from tournament.run import run_tournament

    out = run_tournament(small_config(report=True), tmp_path / "runs", stop_after_units=2)
    assert not (out.run_dir / "performance_matrix.csv").exists()
    return out.run_dir


def test_resume_refuses_options_that_change_results(unfinished):
    before = _snapshot(unfinished)
    out = _cli("run", "--resume", str(unfinished), "--seed", "3")
    assert out.returncode == 2 and "seed" in out.stderr and "config.yaml" in out.stderr
    assert _snapshot(unfinished) == before


def test_resume_refuses_an_edited_config(unfinished):
    cfg = unfinished / "config.yaml"
    cfg.write_text(cfg.read_text().replace("seed: 7", "seed: 8"))
    out = _cli("run", "--resume", str(unfinished))
    assert out.returncode == 2 and "config.yaml" in out.stderr and "sha256" in out.stderr


def test_resume_recomputes_an_edited_unit_and_moves_a_torn_line_aside(unfinished, small_run):
    units = sorted(unfinished.glob("units/*/*.json"))
    assert len(units) == 2
    doc = json.loads(units[0].read_text())
    key = next(k for k, a in doc["allocations"].items() if len(set(a["weights"].values())) > 1)
    w = doc["allocations"][key]["weights"]
    a, b = sorted(w, key=w.get)[0], sorted(w, key=w.get)[-1]
    w[a], w[b] = w[b], w[a]                            # a weight swap the old resume reloaded silently
    units[0].write_text(json.dumps(doc, sort_keys=True, indent=1))
    with open(unfinished / "audit.jsonl", "ab") as fh:
        fh.write(b'{"seq":999,"type":"sel')             # a crash mid-write

    out = _cli("run", "--resume", str(unfinished), "--no-report", "--executor", "serial")
    assert out.returncode == 0, out.stderr
    assert "head:" in out.stdout and "checks:" in out.stdout
    assert not (unfinished / "report").exists()          # --no-report honoured over the run's `report: true`
    rep = verify_ledger(unfinished, require_run_end=True)
    assert rep.ok, rep.message
    recs = [json.loads(x) for x in (unfinished / "audit.jsonl").read_text().splitlines()]
    resume = next(r for r in recs if r["type"] == "resume")
    assert resume["data"]["partial"]["file"] == "audit.partial-1.jsonl"
    assert resume["data"]["overrides"] == {"report": False, "executor": "serial"}
    warn = [r["data"] for r in recs if r["type"] == "warning" and r["data"]["code"] == "unit_recomputed"]
    rel = units[0].relative_to(unfinished).as_posix()
    assert len(warn) == 1 and warn[0]["file"] == rel and "does not match" in warn[0]["reason"]
    # the recomputed unit gives the uninterrupted run's decisions and returns
    for name in ("weights.parquet", "returns.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(unfinished / name), pd.read_parquet(small_run.run_dir / name),
                                      check_exact=True, obj=name)
