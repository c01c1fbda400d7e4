"""The report's window renderers die with the process that renders (issue 16's orphan rule, applied to
``reports.render``'s process pool): after ``kill -9`` of the renderer, no pool worker outlives it by
more than a few seconds."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
GRACE = 5.0  # the watchdog polls every 0.5 s (contracts.lifetime.POLL_SECONDS); slack for a loaded machine

# The chunks sleep instead of drawing, so the workers are still busy when their parent is killed
# (``fork`` is the start method here: one thread, so the patched function is what the workers run).
_SCRIPT = """
import time
import reports.render as r

def slow_chunk(bundles, report_dir):
    time.sleep(120)
    return len(bundles)

r._render_chunk = slow_chunk
r.render_windows(list(range(4)), "{out}", workers=2)
"""


def _alive(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_window_renderers_die_with_their_parent(tmp_path):
    script = tmp_path / "render.py"
    script.write_text(_SCRIPT.format(out=tmp_path))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    parent = subprocess.Popen([sys.executable, str(script)], env=env, cwd=tmp_path, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers: list[psutil.Process] = []
    try:
        me = psutil.Process(parent.pid)
        deadline = time.monotonic() + 120
        while len(workers) < 2:
            assert parent.poll() is None, parent.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the pool's two workers never started"
            workers = [c for c in me.children(recursive=True) if _alive(c)]
            time.sleep(0.1)
        time.sleep(1.0)  # the initializers have run (they run before the first chunk)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        t = time.monotonic()
        while any(_alive(p) for p in workers) and time.monotonic() - t < GRACE:
            time.sleep(0.1)
        survivors = [p.pid for p in workers if _alive(p)]
        assert not survivors, f"renderers outlived their killed parent by {GRACE} s: {survivors}"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=30)
        for p in workers:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        parent.stderr.close()
