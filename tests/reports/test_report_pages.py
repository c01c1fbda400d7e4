"""The rendered pages of a hand-built run directory: they exist, hold their key elements, and the
numbers in their tables equal the run directory's inputs."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests.reports.conftest import column, parse_html
from tests.reports.report_fixture import build_run

INDEX_IDS = ["summary-table", "pit-banner", "ledger-status", "inputs-table", "checks-status", "checks-table", "heatmap-img",
             "matrix-table", "liquidations-table", "vol-img", "vol-table", "pbo-img", "pbo-table", "dsr-img",
             "dsr-table", "verdicts-table", "tests-table", "spa-table", "mcs-table", "sensitivity-step_size",
             "backend_disagreement-table", "simulator_disagreement-table", "htr-img", "htr-table",
             "windows-table", "quarantine-table"]
WINDOW_IDS = ["dates-table", "flags-table", "flag-count", "engines-table", "funnel-v4", "vetoes-v4",
              "hardening-table", "dendrogram-img", "winners-v4", "weights-v4", "vol-table"]


def close4(text: str, value: float) -> bool:
    """A table shows 4 significant digits (``reports.html.fmt``): equal up to that rounding."""
    return math.isclose(float(text), value, rel_tol=5e-4, abs_tol=1e-12)


def read(p: Path):
    return parse_html(p.read_text(encoding="utf-8"))


def test_pages_exist_and_images_resolve(fixture_run):
    fx, index = fixture_run
    assert index == fx.run_dir / "report" / "index.html"
    pages = sorted((fx.run_dir / "report" / "windows").rglob("*.html"))
    assert len(pages) == len(fx.candidates) == 4
    for page in [index, *pages]:
        doc = read(page)
        assert doc.imgs, page
        for src in doc.imgs:
            png = (page.parent / src).resolve()
            assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", (page, src)


def test_index_key_elements_present_and_non_empty(fixture_run):
    fx, index = fixture_run
    doc = read(index)
    for i in INDEX_IDS:
        assert i in doc.ids and doc.ids[i].strip(), i
    assert "run_end not yet appended" in doc.ids["ledger-status"]
    assert "point-in-time" in doc.ids["pit-banner"] and "NOT" not in doc.ids["pit-banner"]
    summary = dict((r[0], r[1]) for r in doc.tables["summary-table"][1:])
    trials = fx.matrix[fx.matrix["trial"]]
    best = trials.loc[trials["sharpe"].idxmax()]
    assert summary["trials"] == str(len(trials)) and summary["cells"] == str(len(fx.matrix))
    assert summary["best trial by Sharpe"].startswith(f"{best['engine']} | {best['profile']} | step {best['step_size']}")
    inputs = dict((r[0], r[1]) for r in doc.tables["inputs-table"][1:])
    assert inputs["git commit"] == "abc123def456" and inputs["panel sha256"] == "f" * 64


def test_matrix_table_equals_csv(fixture_run):
    fx, index = fixture_run
    doc = read(index)
    trial_ids = column(doc.tables["matrix-table"], "cell id")
    assert sorted(trial_ids) == sorted(fx.matrix.loc[fx.matrix["trial"].astype(bool), "cell_id"])
    sh_shown = [float(x) for x in column(doc.tables["matrix-table"], "sharpe")]
    assert sh_shown == sorted(sh_shown, reverse=True)  # trial cells first, best Sharpe first
    m = fx.matrix.set_index("cell_id")
    n = 0
    for tid in ("matrix-table", "matrix-verification-table"):
        rows = doc.tables[tid]
        ids = column(rows, "cell id")
        n += len(ids)
        for cid, sh, lo, hi, vol in zip(ids, column(rows, "sharpe"), column(rows, "sharpe ci low"),
                                        column(rows, "sharpe ci high"), column(rows, "annual volatility %")):
            assert close4(sh, m.at[cid, "sharpe"])
            assert close4(lo, m.at[cid, "sharpe_ci_low"]) and close4(hi, m.at[cid, "sharpe_ci_high"])
            assert vol == f"{100 * m.at[cid, 'annual_volatility']:.2f}%"
    assert n == len(fx.matrix)  # every cell is shown once, trials or verification


def test_statistics_tables_equal_bootstrap(fixture_run):
    fx, index = fixture_run
    doc = read(index)
    pbo = dict((r[0], r[1]) for r in doc.tables["pbo-table"][1:])
    assert float(pbo["PBO (probability of backtest overfitting)"]) == fx.boot["pbo"]["pbo"]
    tests = {r[0]: r for r in doc.tables["tests-table"][1:]}
    head = doc.tables["tests-table"][0]
    for t in fx.boot["paired_tests"]["tests"]:
        row = tests[t["comparison"]]
        assert close4(row[head.index("p")], t["pvalue"]) and close4(row[head.index("p Holm")], t["pvalue_holm"])
        assert row[head.index("reject")] == ("yes" if t["reject_holm"] else "no")
    ver = {r[0]: r for r in doc.tables["verdicts-table"][1:]}
    assert ver["v4 vs v3.4"][2] == "1"
    dsr = dict(zip(column(doc.tables["dsr-table"], "cell"), column(doc.tables["dsr-table"], "DSR")))
    trials = fx.matrix[fx.matrix["trial"]]
    assert set(dsr) == set(trials["cell_id"])
    for cid, v in zip(trials["cell_id"], trials["dsr"]):
        assert close4(dsr[cid], v)
    q = doc.tables["quarantine-table"]
    assert len(q) == 2 and q[1][1:3] == ["1.5", "1.1"] and q[1][3:5] == ["-20.00%", "-10.00%"]
    assert column(doc.tables["failures-table"], "check") == ["bankruptcy"]
    htr = {r[0]: r for r in doc.tables["htr-table"][1:]}
    assert htr["v4"][1] == "3" and htr["v4"][-1] == "1"


def test_sensitivity_table_is_sharpe_across_step_sizes(fixture_run):
    fx, index = fixture_run
    rows = read(index).tables["sensitivity-step_size"]
    assert rows[0] == ["engine", "profile", "step_size=5", "step_size=10"]
    t = fx.matrix[fx.matrix["trial"]].set_index(["engine", "profile", "step_size"])
    for e, p, s5, s10 in rows[1:]:
        assert close4(s5, t.at[(e, p, 5), "sharpe"]) and close4(s10, t.at[(e, p, 10), "sharpe"])


def test_liquidation_and_equity_tables(fixture_run):
    fx, index = fixture_run
    doc = read(index)
    rows = doc.tables["liquidations-table"]
    assert column(rows, "cell") == [fx.liquidated_cell] and column(rows, "date") == ["2024-02-07"]
    eq = doc.tables["equity-table"]
    for cid, final, mdd in zip(column(eq, "cell"), column(eq, "final equity"), column(eq, "max drawdown %")):
        r = fx.returns[fx.returns.cell_id == cid].sort_values("date")["return"].to_numpy()
        equity = np.cumprod(1 + r)  # independent: loop-free numpy, high-water mark with the initial 1
        hwm = np.maximum.accumulate(np.concatenate(([1.0], equity)))[1:]
        assert close4(final, equity[-1]) if equity[-1] != 0 else final == "0"
        assert mdd == f"{100 * (equity / hwm - 1).min():.2f}%"


def test_window_page_elements_and_numbers(fixture_run):
    fx, index = fixture_run
    unit = "s5_t30_l20/1"
    page = fx.run_dir / "report" / "windows" / "s5_t30_l20" / "1.html"
    doc = read(page)
    for i in WINDOW_IDS:
        assert i in doc.ids and doc.ids[i].strip(), i
    # weights per profile|backend equal the allocation records
    rows = doc.tables["weights-v4"]
    for prof in ("hrp", "min_variance"):
        for b in ("native", "riskfolio"):
            got = dict(zip(column(rows, "atom"), column(rows, f"{prof}|{b}")))
            for aid, w in fx.allocations[(unit, "v4", prof, b)]["weights"].items():
                assert close4(got[aid], w)
    # funnel counts and veto reasons from portfolio_candidates.json
    funnel = dict((r[0], r[1]) for r in doc.tables["funnel-v4"][1:])
    f = fx.candidates[unit]["engines"]["v4"]["funnel"]
    assert funnel["snapshot"] == str(f["snapshot"]) and funnel["after hard vetoes"] == str(f["after_hard_vetoes"])
    assert funnel["clusters"] == str(f["n_clusters"])
    vetoes = dict((r[0], int(r[1])) for r in doc.tables["vetoes-v4"][1:])
    assert vetoes == {"liquidity_floor": 2, "sentiment": 2, "adx_floor": 2}
    # the names behind the counts: every vetoed candidate with its reasons, sorted by reason
    rej = fx.candidates[unit]["engines"]["v4"]["rejected"]
    vt = doc.tables["vetoed-v4"]
    assert vt[0] == ["reasons", "symbol", "candidate", "last stage", "value vs threshold"]
    assert sorted(r[2] for r in vt[1:]) == sorted(x["id"] for x in rej)
    assert [r[0] for r in vt[1:]] == sorted(", ".join(x["reasons"]) for x in rej)
    by_id = {x["id"]: x for x in rej}
    assert all(r[1] == by_id[r[2]]["symbol"] for r in vt[1:])
    # realised vol of the window: independent numpy recomputation (std ddof=1 * sqrt(365))
    vt = doc.tables["vol-table"]
    head = vt[0]
    cells = {(c["engine"], c["profile"], c["backend"], c["simulator"], c["step_size"]): c["cell_id"]
             for c in fx.cells.to_dict("records")}
    for r in vt[1:]:
        e, p, b = r[0], r[1], r[2]
        cid = cells[(e, p, b, "vectorbt", 5)]
        rr = fx.returns[(fx.returns.cell_id == cid) & (fx.returns.window == 1)]["return"].to_numpy()
        assert close4(r[head.index("realised vol")], float(np.std(rr, ddof=1) * np.sqrt(365)))
        assert close4(r[head.index("ex-ante vol")], fx.allocations[(unit, e, p, b)]["diagnostics"]["ex_ante_vol_annual"])
    # flags of this window: bankruptcy, the liquidation event, the fallback solver
    kinds = column(doc.tables["flags-table"], "flag")
    assert {"bankruptcy", "liquidation", "fallback solver"} <= set(kinds)
    assert "metric mismatch" in column(doc.tables["cell-flags-table"], "flag")
    assert "stopped at stage 2" in doc.ids["htr-why-v4"]
    leaves = doc.ids["leaves-v4"]  # every candidate of the stored linkage, each once
    labels = fx.candidates[unit]["engines"]["v4"]["linkage_labels"]
    assert all(x in leaves for x in labels) and leaves.count("_mom_") == len(labels)


def test_window_flags_by_window(fixture_run):
    fx, _ = fixture_run
    base = fx.run_dir / "report" / "windows" / "s5_t30_l20"
    assert column(read(base / "0.html").tables["flags-table"], "flag") == ["quarantine"]
    # the fixture's two v4 native cells (hrp, min_variance) warn with worst window 2
    assert column(read(base / "2.html").tables["flags-table"], "flag") == ["backend disagreement"] * 2
    sweep = read(fx.run_dir / "report" / "windows" / "s10_t30_l20" / "0.html")
    assert "quarantine" not in column(sweep.tables["flags-table"], "flag")  # quarantine is base-only


def test_single_export_and_broken_ledger_are_prominent(tmp_path):
    from reports.rundata import load_run
    from reports.tournament_page import alerts, inputs_section

    fx = build_run(tmp_path, n_windows=2, point_in_time=False, sweep=False)
    doc = parse_html(inputs_section(load_run(fx.run_dir)) + alerts(load_run(fx.run_dir)))
    assert "NOT point-in-time" in doc.ids["pit-banner"] and "Ledger verified" in doc.ids["ledger-status"]
    assert "single undated export" in doc.ids["alert-pit"] and "alert-ledger" not in doc.ids
    ledger = fx.run_dir / "audit.jsonl"
    raw = ledger.read_bytes()
    ledger.write_bytes(raw.replace(b'"git_commit":"abc123def456"', b'"git_commit":"abc123def457"', 1))
    doc = parse_html(inputs_section(load_run(fx.run_dir)) + alerts(load_run(fx.run_dir)))
    assert "FAILED at seq 0" in doc.ids["ledger-status"] and "fails verification" in doc.ids["alert-ledger"]


def test_missing_optional_files_render_with_a_notice(tmp_path):
    from reports import render_report

    fx = build_run(tmp_path, n_windows=2, sweep=False)
    (fx.run_dir / "bootstrap.json").unlink()
    (fx.run_dir / "weights.parquet").unlink()
    (fx.run_dir / "report").mkdir()
    (fx.run_dir / "report" / "stale.html").write_text("old")
    doc = read(render_report(fx.run_dir, workers=1))
    assert "bootstrap.json" in doc.ids["missing-files"] and "weights.parquet" in doc.ids["missing-files"]
    assert not (fx.run_dir / "report" / "stale.html").exists()
    assert doc.tables["htr-table"][1:]  # falls back to the selection records


def test_not_a_run_directory(tmp_path):
    from contracts.errors import DataError
    from reports import render_report

    with pytest.raises(DataError, match="not a run directory"):
        render_report(tmp_path)


def test_process_pool_gives_the_same_window_pages(fixture_run, tmp_path):
    """Window pages rendered by 2 worker processes equal the serial ones, byte for byte."""
    from reports.render import render_windows
    from reports.rundata import load_run
    from reports.units import collect_units

    fx, _ = fixture_run
    serial = {p.relative_to(fx.run_dir / "report"): p.read_bytes()
              for p in (fx.run_dir / "report" / "windows").rglob("*.html")}
    n = render_windows(collect_units(load_run(fx.run_dir)), tmp_path, workers=2)
    pooled = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "windows").rglob("*.html")}
    assert n == 4 and serial == pooled


@pytest.mark.slow
def test_many_windows_render_in_a_pool(tmp_path):
    """120 base windows (+60 sweep windows) through the process pool: every page, every image."""
    import time

    from reports import render_report

    fx = build_run(tmp_path, n_windows=120)
    t0 = time.perf_counter()
    index = render_report(fx.run_dir, workers=2)
    seconds = time.perf_counter() - t0
    pages = list((fx.run_dir / "report" / "windows").rglob("*.html"))
    pngs = list((fx.run_dir / "report" / "windows").rglob("*_dendrogram.png"))
    assert len(pages) == len(pngs) == 180
    rows = read(index).tables["windows-table"]
    assert len(rows) == 181
    print(f"180 window pages + index in {seconds:.1f} s")


def test_candidates_written_by_selection_output_render(fixture_run, tmp_path):
    """A portfolio_candidates.json produced by the selection pillar's own writer renders."""
    import json

    from scipy.cluster.hierarchy import linkage

    from contracts.atom import StrategyAtom
    from contracts.enums import SpecVersion
    from contracts.selection import Funnel, RejectedCandidate, SelectionResult
    from reports.rundata import load_run
    from reports.units import collect_units
    from reports.window_page import render_window
    from selection.output import portfolio_candidates

    fx, _ = fixture_run
    ids = [f"A{i}_mom_LONG" for i in range(5)]
    atoms = [StrategyAtom(id=ids[i], symbol=f"A{i}USDT", identity=f"A{i}", direction="LONG", logic="mom",
                          cluster=i % 2, sector="L1", conviction={"log_mps": 0.5 + i}, htr_stage=1)
             for i in range(3)]
    res = SelectionResult(
        engine="v4", spec_version=SpecVersion.V4, window=1, cutoff_date="2024-02-04T00:00:00+00:00",
        atoms=atoms, clusters={x: i % 2 for i, x in enumerate(ids)}, htr_stage=1,
        manifest={"shrinkage_intensity": 0.2, "hardened": True},
        funnel=Funnel(snapshot=9, deduplicated=7, after_hard_vetoes=5, after_all_vetoes_stage1=4,
                      winners_by_stage={1: 3}, n_clusters=2),
        rejected=[RejectedCandidate(id=ids[3], symbol="A3USDT", reasons=["liquidity"], last_stage=1),
                  RejectedCandidate(id=ids[4], symbol="A4USDT", reasons=["sentiment", "liquidity"], last_stage=1)],
        linkage=linkage(np.random.default_rng(0).normal(size=(5, 8)), "ward").tolist(), linkage_labels=ids)
    b = next(x for x in collect_units(load_run(fx.run_dir)) if x.unit == "s5_t30_l20/1")
    path = tmp_path / "portfolio_candidates.json"
    path.write_text(json.dumps(portfolio_candidates({"v4": res})))
    b.candidates_path = str(path)
    doc = read(render_window(b, tmp_path / "report"))
    assert column(doc.tables["winners-v4"], "atom") == ids[:3]
    assert column(doc.tables["winners-v4"], "conviction log_mps") == ["0.5", "1.5", "2.5"]
    assert dict((r[0], int(r[1])) for r in doc.tables["vetoes-v4"][1:]) == {"liquidity": 2, "sentiment": 1}
    hard = {r[0]: r for r in doc.tables["hardening-table"][1:]}
    assert hard["v4"][1:3] == ["yes", "0.2"]
    assert (tmp_path / "report" / "windows" / "s5_t30_l20" / "1_dendrogram.png").is_file()


def test_relaxations_section_counts_what_the_run_recorded(fixture_run):
    """Issue 19: the tournament page lists how often each profile was not itself. The fixture's
    ledger has v4 HRP (native) relaxed (atom cap 0.3) and v3.4 min-variance (native) on a fallback,
    each in window 1 of every setting."""
    fx, index = fixture_run
    doc = read(index)
    m = fx.matrix
    with_w1 = [s for s in fx.settings if f"{s.id}/1" in fx.candidates]  # settings that have window 1
    n_set = len(with_w1)
    assert n_set >= 1
    one = m[m["simulator"] == "vectorbt"]  # both simulators share allocations: counted once
    got = {(r[0], r[1]): r[2:] for r in doc.tables["relaxations-table"][1:]}
    assert set(got) == set(one.groupby(["profile", "backend"]).groups)
    for (p, b), g in one.groupby(["profile", "backend"]):
        nw, nr, nf = int(g["n_windows"].sum()), int(g["n_relaxed"].sum()), int(g["n_fallback"].sum())
        assert got[(p, b)] == [str(nw), str(nr), str(nf), f"{100 * (nr + nf) / nw:.2f}%"]
    assert got[("hrp", "native")][1] == str(n_set) and got[("min_variance", "native")][2] == str(n_set)
    assert got[("hrp", "riskfolio")][1:3] == ["0", "0"]
    what = {tuple(r[:3]): r[3:] for r in doc.tables["relaxed-what-table"][1:]}
    assert what == {("hrp", "native", "atom_cap"): [str(n_set), "0.3", "0.3"],
                    ("min_variance", "native", "fallback (other)"): [str(n_set), "", ""]}
    cells = column(doc.tables["relaxed-cells-table"], "cell id")
    steps = {s.step_size for s in with_w1}
    expected = fx.cells[fx.cells["step_size"].isin(steps) & fx.cells["backend"].eq("native")
                        & ((fx.cells["engine"].eq("v4") & fx.cells["profile"].eq("hrp"))
                           | (fx.cells["engine"].eq("v3.4") & fx.cells["profile"].eq("min_variance")))]
    assert sorted(cells) == sorted(expected["cell_id"]) and len(cells) >= 2
    mi = m.set_index("cell_id")
    assert all(mi.at[c, "n_relaxed"] + mi.at[c, "n_fallback"] == 1 for c in cells)


def test_window_page_shows_reason_of_a_relaxed_allocation(fixture_run):
    fx, _ = fixture_run
    unit = next(u for u in fx.candidates if u.endswith("/1"))
    doc = read(fx.run_dir / "report" / "windows" / f"{unit}.html")
    vt = doc.tables["vol-table"]
    head = vt[0]
    row = next(r for r in vt[1:] if r[:3] == ["v4", "hrp", "native"])
    assert row[head.index("status")].endswith("relaxed")
    assert row[head.index("reason")] == "relaxed to stay feasible: atom_cap=0.3"


def test_window_page_split_column_shows_a_moved_barbell_split():
    from reports.window_page import _split
    moved = {"diagnostics": {"core_share": 0.5, "aggressor_share": 0.5, "core_share_target": 0.9}}
    held = {"diagnostics": {"core_share": 0.9 - 1e-15, "aggressor_share": 0.1, "core_share_target": 0.9}}
    assert _split(moved) == "0.5 / 0.5 (target 0.9 / 0.1)"
    assert _split(held) == "0.9 / 0.1" and _split({"diagnostics": {}}) == ""
