"""The report's volatility-regime parts (issue 20) on a hand-built run with regime files: the regime split
below each sensitivity table equals regimes.parquet, the ranking test is stated in words, the base
setting's split and the window pages' regime mix are shown."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audit.regimes import regime_figures
from contracts.schemas import check_frame
from tests.reports.conftest import column, parse_html
from tests.reports.report_fixture import build_run


def _add_regime_files(fx):
    d = fx.run_dir
    dates = pd.date_range("2024-01-01", periods=120, freq="D", tz="UTC")
    cycle = np.array(["calm", "calm", "turbulent", "crisis", "calm", "turbulent"], dtype=object)
    reg = cycle[np.arange(len(dates)) % len(cycle)].astype(object)
    reg[:3] = None  # a warm-up
    labels = pd.DataFrame({"date": dates, "vol": np.linspace(0.2, 0.8, len(dates)), "cut_low": 0.4,
                           "cut_high": 0.6, "regime": pd.array(reg, dtype="string")})
    check_frame(labels, "regime_labels.parquet").to_parquet(d / "regime_labels.parquet", index=False)
    lab = pd.Series(labels["regime"].to_numpy(), index=dates, dtype="string")
    fig = regime_figures(fx.returns, lab, 365, seed_of=lambda c, r: 7, n_boot=50, min_days=3)
    check_frame(fig, "regimes.parquet").to_parquet(d / "regimes.parquet", index=False)
    return lab, fig


@pytest.fixture(scope="module")
def regime_run(tmp_path_factory):
    from reports import render_report

    fx = build_run(tmp_path_factory.mktemp("regime-run"), n_windows=6)
    lab, fig = _add_regime_files(fx)
    index = render_report(fx.run_dir, workers=1)
    return fx, lab, fig, index


def close4(text: str, value: float) -> bool:
    return abs(float(text) - value) <= 5e-4 * abs(value) + 1e-12


def test_sensitivity_table_has_a_regime_split(regime_run):
    fx, lab, fig, index = regime_run
    doc = parse_html(index.read_text(encoding="utf-8"))
    rows = doc.tables["sensitivity-regimes-step_size"]
    groups = [h.split(":")[0] for h in rows[0][2:]]
    assert groups == ["calm", "calm", "turbulent", "turbulent", "crisis", "crisis"]
    t = fx.matrix[fx.matrix["trial"]][["cell_id", "engine", "profile", "step_size"]].merge(fig, on="cell_id").set_index(["engine", "profile", "step_size", "regime"])
    steps = [int(h.split("=")[1].split(" ")[0]) for h in rows[0][2:]]
    for r in rows[1:]:
        for g, s, text in zip(groups, steps, r[2:]):
            assert close4(text, t.at[(r[0], r[1], s, g), "sharpe"])
    verdicts = doc.ids["consistency-step_size"]
    assert "calm vs turbulent" in verdicts and "tau" in verdicts


def test_base_split_and_ranking_words(regime_run):
    fx, lab, fig, index = regime_run
    doc = parse_html(index.read_text(encoding="utf-8"))
    base = doc.tables["regimes-base-table"]
    assert base[0][2:7] == ["calm: Sharpe", "calm: CI", "calm: volatility %", "calm: max DD %", "calm: days"]
    assert len(base) == 1 + 3 * 2  # engines x profiles of the fixture
    assert "Kendall" in index.read_text(encoding="utf-8") and doc.ids["consistency-base"].count("tau") == 3
    assert "regime-labels-img" in doc.ids and "regime-lookback-none" in doc.ids  # no lookback sweep here


def test_window_pages_show_the_regime_mix(regime_run):
    fx, lab, fig, index = regime_run
    doc = parse_html(index.read_text(encoding="utf-8"))
    win = pd.read_parquet(fx.run_dir / "windows.parquet")
    regime_col = column(doc.tables["windows-table"], "regime")
    assert len(regime_col) == len(win) and all(x in ("calm", "turbulent", "crisis") for x in regime_col)
    for row in win.to_dict("records"):
        page = fx.run_dir / "report" / "windows" / row["setting_id"] / f"{row['window']}.html"
        mix = parse_html(page.read_text(encoding="utf-8")).tables["regime-mix-table"]
        got = {r[0]: int(r[1]) for r in mix[1:]}
        part = lab.loc[row["test_start"]:row["test_end"]]
        assert got["calm"] == int((part == "calm").sum()) and got["crisis"] == int((part == "crisis").sum())
        assert sum(got.values()) == len(part)


def test_run_without_regime_files_says_so(fixture_run):
    fx, index = fixture_run
    doc = parse_html(index.read_text(encoding="utf-8"))
    assert "regimes-none" in doc.ids
