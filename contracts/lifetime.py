"""Worker processes that die with their driver (issue 16): the tournament's process-pool workers
(``tournament.executors``) and the report's window renderers (``reports.render``).

A ``tournament run`` killed with SIGKILL cannot clean up: its process-pool workers used to be
orphaned (re-parented to PID 1) and kept running, holding their memory. A worker calls
``die_with_parent`` first thing in its initializer:

- on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (through ``ctypes``): the kernel kills the worker
  the moment the thread that forked it exits (the driver's thread that submitted the first unit;
  ``concurrent.futures`` forks every worker from that thread);
- everywhere, a daemon watchdog thread that polls ``os.getppid()`` every ``poll`` seconds and exits
  the process (``os._exit``, no clean-up: the driver that would collect the results is gone) when
  the parent changed, which is how an orphan sees its parent's death on any POSIX system.

A parent that died before the worker armed the signal is caught by the same ``getppid`` comparison
made right after ``prctl``. The workers of a run's own Dask ``LocalCluster`` arm the watchdog alone
(``tournament.dask_units.UnitsPlugin.setup``): they are forked from the driver, where their nannies
run; ``distributed``'s own end-with-the-nanny signal (``parent_alive_pipe``) once came more than 5 s
late in ``tests/tournament/test_worker_lifetime.py`` after the workers became forked (probably: a forked
worker inherits the driver's open pipes, an elder sibling's ``parent_alive_pipe`` included); no
``PR_SET_PDEATHSIG`` there: it fires when the forking *thread* exits, and a nanny's forking thread need
not live as long as the driver (not checked for every ``distributed`` version).
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

#: ``PR_SET_PDEATHSIG`` from ``<linux/prctl.h>``
PR_SET_PDEATHSIG = 1
#: seconds between two ``getppid`` polls of the watchdog (an orphan exits within about this long)
POLL_SECONDS = 0.5
#: exit status of a worker that outlived its parent
ORPHAN_EXIT = 70


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask the Linux kernel to send ``sig`` to this process when its parent thread exits.

    Returns whether the request was accepted (False off Linux or without a usable libc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent_pid: int, poll: float) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(ORPHAN_EXIT)
        time.sleep(poll)


def die_with_parent(parent_pid: int | None = None, poll: float = POLL_SECONDS,
                    death_signal: bool = True) -> threading.Thread:
    """Make this (worker) process exit when ``parent_pid``, its parent, dies.

    ``parent_pid`` is the driver's PID as the driver saw it (passed in the initializer's arguments),
    so that a parent that died before this call is detected too; ``None`` takes the current parent
    (a pool started through a ``forkserver``, whose server exits when its driver dies: the report's
    window renderers). ``death_signal=False``: the watchdog only, for a worker forked from a thread
    that may exit before the driver does (a Dask nanny's). Returns the watchdog thread."""
    if parent_pid is None:
        parent_pid = os.getppid()
    if death_signal:
        set_parent_death_signal()
    if os.getppid() != parent_pid:
        os._exit(ORPHAN_EXIT)
    t = threading.Thread(target=_watch, args=(parent_pid, poll), daemon=True, name="wfaudit-parent-watchdog")
    t.start()
    return t
