"""Fixtures of the report tests: a hand-built run directory rendered once per module, an HTML table
parser, and the headless-Chromium locator of the browser tests."""
from __future__ import annotations

import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.reports.report_fixture import build_run

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """Path of a Chromium binary: ``$CHROMIUM`` if set, else the first name found on PATH."""
    env = os.environ.get("CHROMIUM")
    if env and Path(env).is_file():
        return env
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium_or_skip() -> str:
    """The Chromium binary; skips when none is found outside CI, fails inside CI (``CI`` set), where
    the Makefile installs it (Debian: ``apt-get install -y chromium``)."""
    path = find_chromium()
    if path is None:
        msg = ("headless Chromium not found (install the Debian package `chromium`: "
               "apt-get update && apt-get install -y chromium, or set $CHROMIUM)")
        if os.environ.get("CI"):
            pytest.fail(msg + " -- required when CI is set")
        pytest.skip(msg)
    return path


class _Tables(HTMLParser):
    """Collects every <table id=...> as rows of cell texts, and every element id with its text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.ids: dict[str, str] = {}
        self.imgs: list[str] = []
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._open: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src", ""))
            if a.get("id"):
                self.ids[a["id"]] = a.get("src", "")
            return
        if a.get("id"):
            self._open.append((tag, a["id"]))
            self.ids.setdefault(a["id"], "")
        if tag == "table":
            self._table = a.get("id") or f"_anon{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(re.sub(r"\s+", " ", "".join(self._cell)).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        if self._open and self._open[-1][0] == tag:
            self._open.pop()

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        for _, i in self._open:
            self.ids[i] += data


def parse_html(text: str) -> _Tables:
    p = _Tables()
    p.feed(text)
    return p


def column(rows: list[list[str]], name: str) -> list[str]:
    """Values of the column whose header is ``name`` (header row excluded)."""
    idx = rows[0].index(name)
    return [r[idx] for r in rows[1:]]


@pytest.fixture(scope="session")
def fixture_run(tmp_path_factory):
    """A run directory with 3 base windows and 1 sweep window, rendered once (serially)."""
    from reports import render_report

    fx = build_run(tmp_path_factory.mktemp("run"), n_windows=3)
    index = render_report(fx.run_dir, workers=1)
    return fx, index
