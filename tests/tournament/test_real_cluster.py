"""A real Dask cluster (issue 16): ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1
(loopback only), ``tournament run --scheduler tcp://127.0.0.1:PORT`` on a small config, one worker
killed with SIGKILL mid-run: the run still completes, with outputs identical to serial (DESIGN
section 3: returns, weights, positions, performance matrix and per-unit decision records). Every
process the test starts is stopped (``finally``), each worker in its own process group (the
``dask worker`` nanny and the worker process it forks).
"""
import os
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from tests.tournament.conftest import SMALL, small_config
from tests.tournament.test_reproducibility import _decisions, _frames
from tests.tournament.test_worker_lifetime import CLI, cli_env
from tournament.run import run_tournament

DASK = (sys.executable, "-m", "dask")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """SIGKILL the process group of ``proc`` (started with ``start_new_session``) and reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:  # pragma: no cover
        proc.kill()


def _start(args, log) -> subprocess.Popen:
    return subprocess.Popen(list(args), env=cli_env(), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _units_done(runs) -> int:
    return sum(1 for _ in runs.glob("*/units/*/*.json"))


def run_on_real_cluster(tmp_path, max_windows: int, kill_worker: bool):
    """Start the cluster, run the CLI on it (killing the first worker seen running a unit, when asked:
    waiting for one particular worker, or for a unit to be back first, could miss the run on a fast
    machine); returns (run folder, units done when the worker was killed or None)."""
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    logs = {n: open(tmp_path / f"{n}.log", "wb") for n in ("scheduler", "w0", "w1", "run")}
    procs: dict[str, subprocess.Popen] = {}
    killed_at, watcher = None, None
    try:
        procs["scheduler"] = _start([*DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                     "--no-dashboard", "--dashboard-address", "127.0.0.1:0"], logs["scheduler"])
        for w in ("w0", "w1"):
            procs[w] = _start([*DASK, "worker", addr, "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1",
                               "--no-dashboard", "--dashboard-address", "127.0.0.1:0", "--name", w, "--death-timeout", "60"], logs[w])
        from dask.distributed import Client

        watcher = Client(addr, timeout=60)  # the test's own client: which worker runs what
        watcher.wait_for_workers(2, timeout=120)
        names = {a: w["name"] for a, w in watcher.scheduler_info()["workers"].items()}
        cfg = {**SMALL, "preset": "quick", "max_windows": max_windows}
        (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
        runs = tmp_path / "runs"
        procs["run"] = _start([*CLI, "run", "--config", str(tmp_path / "cfg.yaml"), "--runs-dir", str(runs),
                               "--executor", "dask", "--scheduler", addr], logs["run"])
        deadline = time.monotonic() + 600
        while procs["run"].poll() is None:
            assert time.monotonic() < deadline, "the run did not finish within 600 s"
            busy = [a for a, keys in watcher.processing().items() if keys and a in names] \
                if kill_worker and killed_at is None else []
            if busy:  # a worker is running a unit: kill its nanny and itself, for good (the other finishes)
                killed_at = _units_done(runs)
                os.killpg(procs[names[busy[0]]].pid, signal.SIGKILL)
            time.sleep(0.05)
        out = (tmp_path / "run.log").read_bytes().decode(errors="replace")
        assert procs["run"].returncode == 0, out[-3000:]
        run_dir = next(runs.iterdir())
        return run_dir, killed_at
    finally:
        if watcher is not None:
            watcher.close()
        for p in procs.values():
            _stop(p)
        for fh in logs.values():
            fh.close()


def _assert_same_as_serial(tmp_path, run_dir, max_windows):
    serial = run_tournament(small_config(max_windows=max_windows), tmp_path / "serial")
    a, b = _frames(serial.run_dir), _frames(run_dir)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)
    assert _decisions(serial.run_dir) == _decisions(run_dir)


def test_real_cluster_survives_killed_worker(tmp_path):
    """Four units; the first worker seen running a unit is SIGKILLed; the other finishes the run
    (35 s at load 1, 68 s at load 5 with six units on the shared 2-core machine)."""
    run_dir, killed_at = run_on_real_cluster(tmp_path, max_windows=4, kill_worker=True)
    assert killed_at is not None and killed_at < 4, f"the worker was not killed mid-run ({killed_at})"
    _assert_same_as_serial(tmp_path, run_dir, 4)


@pytest.mark.slow
def test_real_cluster_survives_killed_worker_longer_run(tmp_path):
    """The same on 16 windows: the killed worker dies at its first unit, the other runs the rest."""
    run_dir, killed_at = run_on_real_cluster(tmp_path, max_windows=16, kill_worker=True)
    assert killed_at is not None and killed_at < 16, f"the worker was not killed mid-run ({killed_at})"
    _assert_same_as_serial(tmp_path, run_dir, 16)
