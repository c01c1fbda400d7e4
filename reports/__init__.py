"""Reports pillar: the static HTML site of a run directory (tournament page and per-window pages).

Imports only ``contracts`` and ``audit`` (import-linter enforces it) and reads only the run
directory. Public API: ``render_report(run_dir) -> Path`` of ``report/index.html``.
"""
from reports.render import render_report

__all__ = ["render_report"]
