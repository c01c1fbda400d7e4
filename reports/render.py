"""``render_report(run_dir)``: the static site under ``RUN_DIR/report/``.

- ``report/index.html``: the tournament page (images in ``report/img/``);
- ``report/windows/<setting_id>/<k>.html``: one forensic page per window (its dendrogram PNG
  beside it, ``<k>_dendrogram.png``).

Only the run directory is read. The pages are static HTML with inline CSS and relative image
paths: no network, no JavaScript. Window pages are independent and rendered by a process pool when
there are many (``workers``; default: ``min(4, cpu count)`` from ``PARALLEL_FROM`` windows on, else
serial), each task a chunk of ``CHUNK`` windows sharing one ``DendrogramCanvas``; the per-window cost
is one small dendrogram PNG plus HTML.
A re-render replaces ``report/`` wholly (no stale page of an older render stays).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from contracts.lifetime import die_with_parent
from reports.html import page
from reports.rundata import RunData, load_run
from reports.stats_sections import (checks_section, htr_section, pbo_dsr_section, sensitivity_section,
                                    verdicts_section, verification_section)
from reports.tournament_page import (alerts, equity_section, inputs_section, matrix_section, summary_section,
                                     vol_section, window_index_section)
from reports.tournament_page import baselines_section, relaxations_section
from reports.regime_sections import regime_section
from reports.meta_section import meta_section  # issue 17
from reports.units import UnitBundle, collect_units
from reports.window_page import render_window
from reports.window_plots import DendrogramCanvas

PARALLEL_FROM = 50
CHUNK = 25

TOC = [("summary", "summary"), ("inputs", "inputs & ledger"), ("matrix", "matrix"), ("equity", "equity"),
       ("volatility", "volatility"), ("relaxations", "relaxations"), ("overfitting", "PBO & DSR"), ("verdicts", "verdicts"),
       ("sensitivity", "sensitivity"), ("regimes", "regimes"), ("meta", "meta-portfolio"), ("verification", "verification"), ("htr", "HTR"), ("checks", "checks"),
       ("windows", "windows")]


def _render_chunk(bundles: list[UnitBundle], report_dir: str) -> int:
    canvas = DendrogramCanvas()  # one set of figures per chunk (see reports.window_plots)
    for b in bundles:
        render_window(b, report_dir, canvas)
    return len(bundles)


def _default_workers(n: int) -> int:
    if n < PARALLEL_FROM:
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def _context():
    """``fork`` when this process runs no other thread (workers then inherit matplotlib and scipy
    already imported, so they start at once); else ``forkserver`` (forking a threaded process, e.g.
    one holding a Dask client, can deadlock), else the platform default."""
    methods = mp.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return mp.get_context("fork")
    if "forkserver" in methods:
        return mp.get_context("forkserver")
    return None


def render_windows(bundles: list[UnitBundle], report_dir: Path, workers: int | None = None) -> int:
    """Render every window page; returns the number rendered."""
    w = _default_workers(len(bundles)) if workers is None else max(1, int(workers))
    if w == 1 or len(bundles) < 2:
        return _render_chunk(bundles, str(report_dir))
    size = min(CHUNK, -(-len(bundles) // w))  # at least one chunk per worker
    chunks = [bundles[i:i + size] for i in range(0, len(bundles), size)]
    # workers exit when this process dies, even by SIGKILL (contracts.lifetime: no orphaned renderers)
    with ProcessPoolExecutor(max_workers=min(w, len(chunks)), mp_context=_context(),
                             initializer=die_with_parent) as pool:
        return sum(pool.map(_render_chunk, chunks, [str(report_dir)] * len(chunks)))


def render_index(rd: RunData, bundles: list[UnitBundle], report_dir: Path, seconds_windows: float) -> Path:
    img = report_dir / "img"
    img.mkdir(parents=True, exist_ok=True)
    body = "".join([
        alerts(rd),
        summary_section(rd, len(bundles)),
        baselines_section(rd),
        inputs_section(rd),
        matrix_section(rd, img),
        equity_section(rd, img),
        vol_section(rd, img),
        relaxations_section(rd),
        pbo_dsr_section(rd, img),
        verdicts_section(rd),
        sensitivity_section(rd),
        regime_section(rd, img),
        meta_section(rd, img),  # issue 17: empty without a meta block
        verification_section(rd),
        htr_section(rd, img),
        checks_section(rd),
        window_index_section(bundles),
        f"<p class='muted' id='render-time'>{len(bundles)} window pages rendered in {seconds_windows:.2f} s</p>",
    ])
    # the meta section exists only with a meta block (issue 17): link the sections present
    toc = '<nav class="toc">' + " ".join(f'<a href="#{a}">{t}</a>' for a, t in TOC
                                         if a != "meta" or 'id="meta"' in body) + "</nav>"
    body = toc + body
    out = report_dir / "index.html"
    out.write_text(page(f"Tournament report: {rd.run_id}", body,
                        subtitle=f"run directory {rd.run_dir.name}"), encoding="utf-8")
    return out


def render_report(run_dir: str | Path, *, workers: int | None = None) -> Path:
    """Render the report of a run directory; returns the path of ``report/index.html``.

    ``workers``: processes for the window pages (None: automatic, see the module docstring).
    Raises ``contracts.errors.DataError`` if ``run_dir`` is not a run directory.
    """
    rd = load_run(run_dir)
    report_dir = rd.run_dir / "report"
    if report_dir.exists():
        shutil.rmtree(report_dir)
    report_dir.mkdir(parents=True)
    bundles = collect_units(rd)
    t0 = time.perf_counter()
    render_windows(bundles, report_dir, workers)
    return render_index(rd, bundles, report_dir, time.perf_counter() - t0)
