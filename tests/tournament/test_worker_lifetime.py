"""Workers die with their run (issue 16): after ``kill -9`` of a ``tournament run``, none of the
worker processes it started outlives it by more than a few seconds (they used to be orphaned to
PID 1 and keep running, about 365 MB each on the full preset)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.tournament.conftest import SMALL

ROOT = Path(__file__).resolve().parents[2]
#: seconds a worker may outlive its killed driver: the watchdog polls every 0.5 s
#: (contracts.lifetime.POLL_SECONDS); the rest is slack for a loaded 2-core machine
GRACE = 5.0
#: the `tournament` command of this checkout
CLI = (sys.executable, "-c", "from tournament.cli import main; main()")


def cli_env() -> dict:
    """The CLI's environment: this checkout first on PYTHONPATH, one BLAS thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"})
    return env


def alive(p: psutil.Process) -> bool:
    """Running (a zombie waiting for a reaper that may never come, in a container, counts as dead)."""
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_all(procs) -> None:
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


def _units_done(runs: Path) -> int:
    return sum(1 for _ in runs.glob("*/units/*/*.json"))


@pytest.mark.parametrize("executor", ["process", "dask"])
def test_workers_die_with_killed_driver(tmp_path, executor):
    cfg = {**SMALL, "preset": "quick", "executor": executor, "workers": 2, "max_windows": 12}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    runs = tmp_path / "runs"
    driver = subprocess.Popen([*CLI, "run", "--config", str(tmp_path / "cfg.yaml"),
                               "--runs-dir", str(runs)], env=cli_env(), cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    seen: dict[int, psutil.Process] = {}
    try:
        me = psutil.Process(driver.pid)
        deadline = time.monotonic() + 240
        while _units_done(runs) < 1:  # the workers run units: they are up and initialised
            assert driver.poll() is None, f"the run ended early: {driver.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "no unit finished within 240 s"
            for c in me.children(recursive=True):
                seen.setdefault(c.pid, c)
            time.sleep(0.1)
        for c in me.children(recursive=True):
            seen.setdefault(c.pid, c)
        workers = [p for p in seen.values() if alive(p)]
        assert len(workers) >= 2, f"expected 2 worker processes, found {[p.pid for p in workers]}"
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
        t_kill = time.monotonic()
        while any(alive(p) for p in workers) and time.monotonic() - t_kill < GRACE:
            time.sleep(0.1)
        survivors = [(p.pid, p.ppid()) for p in workers if alive(p)]
        assert not survivors, f"{executor}: workers outlived the killed driver by {GRACE} s: {survivors}"
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(timeout=30)
        kill_all(seen.values())
        driver.stderr.close()


_WATCHDOG_ONLY = """
import multiprocessing as mp, os, sys, time
from contracts import lifetime

def child(ppid):
    lifetime.set_parent_death_signal = lambda *a: False  # the portable fallback alone
    lifetime.die_with_parent(ppid, poll=0.1)
    time.sleep(120)

if __name__ == "__main__":
    p = mp.get_context("fork").Process(target=child, args=(os.getpid(),))
    p.start()
    print(p.pid, flush=True)
    time.sleep(120)
"""


def test_watchdog_alone_ends_an_orphan(tmp_path):
    """Without PR_SET_PDEATHSIG (off Linux), the getppid watchdog still ends the orphaned worker."""
    script = tmp_path / "parent.py"
    script.write_text(_WATCHDOG_ONLY)
    parent = subprocess.Popen([sys.executable, str(script)], env=cli_env(), stdout=subprocess.PIPE,
                              start_new_session=True)
    child = None
    try:
        child = psutil.Process(int(parent.stdout.readline()))
        time.sleep(0.5)
        assert alive(child)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        t = time.monotonic()
        while alive(child) and time.monotonic() - t < GRACE:
            time.sleep(0.05)
        assert not alive(child), "the orphan outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=30)
        if child is not None:
            kill_all([child])
        parent.stdout.close()
