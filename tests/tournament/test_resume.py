"""kill -9 a real `tournament run` mid-way, then `--resume`: no lost or duplicated unit, a ledger
that verifies, and the same results as an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import yaml

from audit.verify import verify_ledger
from tests.tournament.conftest import SMALL

EXE = str(Path(sys.executable).with_name("tournament"))


def test_kill_and_resume(small_run, tmp_path):
    cfg = dict(SMALL)
    cfg["preset"] = "quick"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    runs = tmp_path / "runs"
    env = dict(os.environ)
    proc = subprocess.Popen([EXE, "run", "--config", str(tmp_path / "c.yaml"), "--runs-dir", str(runs),
                             "--no-report"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            start_new_session=True)
    deadline = time.time() + 600
    run_dir = None
    while time.time() < deadline:
        found = list(runs.glob("*/units/*/*.json")) if runs.exists() else []
        if found:
            run_dir = found[0].parents[2]
            break
        if proc.poll() is not None:
            raise AssertionError("the run finished before it could be killed: " + proc.stderr.read().decode())
        time.sleep(0.05)
    assert run_dir is not None, "no unit finished in time"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    n_done = len(list(run_dir.glob("units/*/*.json")))
    assert n_done < 3, "killed too late to test resume"
    assert not (run_dir / "performance_matrix.csv").exists()

    out = subprocess.run([EXE, "run", "--resume", str(run_dir), "--no-report"], capture_output=True, text=True,
                         timeout=900, env=env)
    assert out.returncode == 0, out.stderr
    rep = verify_ledger(run_dir, require_run_end=True)
    assert rep.ok, rep.message
    recs = [json.loads(x) for x in (run_dir / "audit.jsonl").read_text().splitlines()]
    assert any(r["type"] == "resume" for r in recs)
    keys = Counter(r["data"].get("key") for r in recs if r["data"].get("key"))
    dup = [k for k, n in keys.items() if n > 1]
    assert not dup, f"duplicated records: {dup[:5]}"
    sel = [r for r in recs if r["type"] == "selection"]
    assert len(sel) == 3 * len(SMALL["engines"])  # every unit once, every engine once
    for name in ("returns.parquet", "weights.parquet", "positions.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(run_dir / name), pd.read_parquet(small_run.run_dir / name),
                                      check_exact=True, obj=name)
