"""The report in headless Chromium: pages load from file:// without a network, key elements are in
the rendered DOM and non-empty, every image resolves, and screenshots are not blank."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.reports.conftest import chromium_or_skip, parse_html

pytestmark = pytest.mark.browser

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT = 60  # s: a cold Chromium start on a loaded 2-core machine takes a few seconds


def _chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=TIMEOUT, check=False)


def _dom(binary: str, profile: Path, page: Path) -> str:
    res = _chromium(binary, profile, "--dump-dom", page.as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def _screenshot(binary: str, profile: Path, page: Path, out: Path) -> np.ndarray:
    res = _chromium(binary, profile, f"--screenshot={out}", "--window-size=1400,2000", page.as_uri())
    assert res.returncode == 0 and out.is_file(), res.stderr[-2000:]
    return np.asarray(Image.open(out).convert("RGB"))


def _check_page(binary: str, profile: Path, page: Path, ids: list[str]) -> None:
    doc = parse_html(_dom(binary, profile, page))
    for i in ids:
        assert i in doc.ids and doc.ids[i].strip(), f"{page.name}: #{i} missing or empty in the DOM"
    assert doc.imgs
    for src in doc.imgs:
        assert not src.startswith(("http:", "https:", "//")), src  # no network
        assert (page.parent / src).resolve().is_file(), f"{page.name}: broken image {src}"


def _not_blank(pixels: np.ndarray) -> None:
    assert pixels.shape == (2000, 1400, 3)
    colours = np.unique(pixels.reshape(-1, 3)[::97], axis=0)
    assert len(colours) > 20, "screenshot is (nearly) a single colour"


@pytest.fixture
def chromium() -> str:
    return chromium_or_skip()


def test_tournament_and_window_pages_in_chromium(chromium, fixture_run, tmp_path):
    """``chromium`` comes first so that a missing browser skips before the run is built."""
    binary = chromium
    fx, index = fixture_run
    window = fx.run_dir / "report" / "windows" / "s5_t30_l20" / "1.html"
    _check_page(binary, tmp_path / "profile", index,
                ["ledger-status", "pit-banner", "matrix-table", "heatmap-img", "verdicts-table", "pbo-img",
                 "dsr-table", "htr-table", "windows-table"])
    _check_page(binary, tmp_path / "profile", window,
                ["flags-table", "funnel-v4", "dendrogram-img", "winners-v4", "weights-v4", "vol-table"])
    _not_blank(_screenshot(binary, tmp_path / "profile", index, tmp_path / "index.png"))
    _not_blank(_screenshot(binary, tmp_path / "profile", window, tmp_path / "window.png"))
