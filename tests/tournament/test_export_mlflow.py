"""MLflow export of a run (issue 18), read back through ``MlflowClient``: every metric against the
matrix, every equity history against ``returns.parquet``, counts stable on a second export, and a
tampered run refused unless forced."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from audit.verify import file_sha256, verify_ledger
from contracts.errors import LedgerError
from tournament.export_read import DIMENSIONS, TEXT_COLUMNS

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra (pip install -e '.[mlflow]')")

from mlflow.entities import ViewType  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from tournament.export_mlflow import export_run  # noqa: E402


def _runs(client, exp_id, run_id, view=ViewType.ACTIVE_ONLY):
    return client.search_runs([exp_id], filter_string=f"tags.`wfaudit.run_id` = '{run_id}'",
                              run_view_type=view, max_results=5000)


def _split(runs):
    parents = [r for r in runs if r.data.tags["wfaudit.role"] == "tournament"]
    return parents, [r for r in runs if r.data.tags["wfaudit.role"] == "cell"]


@pytest.fixture(scope="module")
def exported(small_run, tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    res = export_run(small_run.run_dir, tracking_uri=uri, experiment="t")
    return res, MlflowClient(tracking_uri=uri), uri


def test_children_carry_every_matrix_figure(small_run, exported):
    res, client, _ = exported
    d = small_run.run_dir
    # pandas 3's default parser rounds correctly, like the export's ``float``: metrics compare exactly
    mat = pd.read_csv(d / "performance_matrix.csv").set_index("cell_id")
    start = json.loads((d / "audit.jsonl").open().readline())
    run_id, sel = start["run_id"], start["data"]["parameters"]["selection"]
    small_run_cfg = start["data"]["parameters"]["config"]
    parents, children = _split(_runs(client, res.experiment_id, run_id))
    assert len(parents) == 1 and len(children) == len(mat) == res.n_children == res.n_matrix_rows
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    figures = [c for c in mat.columns if c not in DIMENSIONS and c not in TEXT_COLUMNS]
    n_blank = 0
    for child in children:
        cid = child.data.tags["wfaudit.cell_id"]
        row = mat.loc[cid]
        for dim in DIMENSIONS:
            assert child.data.params[dim] == str(row[dim])
        got = dict(child.data.metrics)
        assert got.pop("equity") is not None
        want = {}
        for c in figures:
            v = row[c]
            if pd.isna(v):  # a blank is not logged
                n_blank += 1
                continue
            want[c] = float(v)  # booleans as 1.0 / 0.0
        assert got == want, cid
        for c in TEXT_COLUMNS:
            assert child.data.tags.get(f"matrix.{c}") == (None if pd.isna(row[c]) else str(row[c]))
        kind = child.data.tags["wfaudit.kind"]
        assert kind == ("baseline" if row["baseline"] else "trial" if row["trial"] else
                        "verification" if row["simulator"] != "vectorbt" else "excluded_trial")
        family = sel.get(row["engine"].split(":")[0])
        if family is not None:  # the selection settings the run used for this engine
            assert child.data.params["selection.top_n"] == json.dumps(family["top_n"])
            assert child.data.params["selection.sector_cap"] == json.dumps(family["sector_cap"])
        assert child.data.params["costs.fees"] == json.dumps(small_run_cfg["costs"]["fees"])
    assert n_blank > 0  # the run has blank DSRs (non-trial cells): the blank rule was exercised
    kinds = pd.Series([c.data.tags["wfaudit.kind"] for c in children]).value_counts()
    assert kinds["trial"] == mat["trial"].sum() and kinds["baseline"] == mat["baseline"].sum()


def test_equity_history_is_the_cumulative_returns(small_run, exported):
    res, client, _ = exported
    ret = pd.read_parquet(small_run.run_dir / "returns.parquet")
    run_id = json.loads((small_run.run_dir / "audit.jsonl").open().readline())["run_id"]
    _, children = _split(_runs(client, res.experiment_id, run_id))
    for child in children:
        g = ret[ret["cell_id"] == child.data.tags["wfaudit.cell_id"]].sort_values("date")
        hist = sorted(client.get_metric_history(child.info.run_id, "equity"), key=lambda m: m.step)
        assert [m.step for m in hist] == list(range(len(g)))
        assert [m.timestamp for m in hist] == [int(t.timestamp()) * 1000 for t in g["date"]]
        eq, want = 1.0, []
        for r in g["return"]:  # sequential product, the same operations as numpy's cumprod: exact
            eq *= 1.0 + r
            want.append(eq)
        assert np.array_equal([m.value for m in hist], want)


def test_parent_holds_provenance_and_run_figures(small_run, exported):
    res, client, _ = exported
    d = small_run.run_dir
    start = json.loads((d / "audit.jsonl").open().readline())
    parent = client.get_run(res.parent_run_id)
    tags, metrics = parent.data.tags, parent.data.metrics
    rep = verify_ledger(d, require_run_end=True)
    assert tags["wfaudit.run_id"] == start["run_id"] and tags["wfaudit.verified"] == "true"
    assert tags["wfaudit.ledger_head_hash"] == rep.head_hash and tags["wfaudit.ledger_head_seq"] == str(rep.head_seq)
    assert tags["wfaudit.inputs.git_commit"] == start["data"]["inputs"]["git_commit"]
    assert tags["wfaudit.inputs.panel_sha256"] == start["data"]["inputs"]["panel_sha256"]
    assert tags["wfaudit.config_sha256"] == file_sha256(d / "config.yaml")
    boot = json.loads((d / "bootstrap.json").read_text())
    assert metrics["pbo"] == boot["pbo"]["pbo"] and metrics["n_trials"] == boot["n_trials"]
    assert metrics["checks_fail"] == boot["checks"]["by_status"].get("fail", 0)
    assert metrics["n_cells"] == res.n_matrix_rows
    assert parent.data.params["engines"] == json.dumps(start["data"]["parameters"]["config"]["engines"])
    top = {a.path for a in client.list_artifacts(res.parent_run_id)}
    assert {"performance_matrix.csv", "bootstrap.json", "config.yaml", "selection"} <= top
    cands = sorted(p.relative_to(d).as_posix() for p in d.glob("selection/*/*/portfolio_candidates.json"))
    sid = cands[0].split("/")[1]
    logged = {a.path for w in client.list_artifacts(res.parent_run_id, f"selection/{sid}")
              for a in client.list_artifacts(res.parent_run_id, w.path)}
    assert set(cands) <= logged


def test_second_export_changes_nothing(small_run, exported):
    res, client, uri = exported
    before = _runs(client, res.experiment_id, client.get_run(res.parent_run_id).data.tags["wfaudit.run_id"],
                   ViewType.ALL)
    again = export_run(small_run.run_dir, tracking_uri=uri, experiment="t")
    after = _runs(client, res.experiment_id, client.get_run(res.parent_run_id).data.tags["wfaudit.run_id"],
                  ViewType.ALL)
    assert again.skipped and again.parent_run_id == res.parent_run_id
    assert sorted(r.info.run_id for r in after) == sorted(r.info.run_id for r in before)


def test_tampered_run_refused_unless_forced(small_run, exported, tmp_path):
    res, client, uri = exported
    bad = tmp_path / small_run.run_dir.name
    shutil.copytree(small_run.run_dir, bad)
    mat = pd.read_csv(bad / "performance_matrix.csv", dtype=str, keep_default_na=False)
    mat.loc[0, "sharpe"] = "9.5"
    mat.to_csv(bad / "performance_matrix.csv", index=False)
    assert not verify_ledger(bad, require_run_end=True).ok
    with pytest.raises(LedgerError, match="fails audit verify"):
        export_run(bad, tracking_uri=uri, experiment="t")
    assert client.get_run(res.parent_run_id).data.tags["wfaudit.verified"] == "true"  # untouched

    forced = export_run(bad, tracking_uri=uri, experiment="t", force=True)
    assert not forced.verified and not forced.skipped
    assert forced.n_replaced == 1 + res.n_children  # the same run id: the verified export is replaced
    parents, children = _split(_runs(client, res.experiment_id, client.get_run(forced.parent_run_id)
                                     .data.tags["wfaudit.run_id"]))
    assert len(parents) == 1 and len(children) == res.n_children
    assert parents[0].data.tags["wfaudit.verified"] == "false"
    assert "performance_matrix.csv" in parents[0].data.tags["wfaudit.verify_message"]
    edited = next(c for c in children if c.data.tags["wfaudit.cell_id"] == mat.loc[0, "cell_id"])
    assert edited.data.metrics["sharpe"] == 9.5

    back = export_run(small_run.run_dir, tracking_uri=uri, experiment="t")  # the true folder again
    assert back.verified and not back.skipped and back.n_replaced == 1 + res.n_children


def test_cli_default_store_under_the_runs_folder(small_run, tmp_path):
    from typer.testing import CliRunner

    from tournament.cli import app

    run = tmp_path / "runs" / small_run.run_dir.name
    shutil.copytree(small_run.run_dir, run)
    out = CliRunner().invoke(app, ["export", "mlflow", str(run)])
    assert out.exit_code == 0, out.output
    db = tmp_path / "runs" / "mlflow" / "mlflow.db"
    assert db.is_file() and f"sqlite:///{db}" in out.output
    assert f"child runs for {len(pd.read_csv(run / 'performance_matrix.csv'))} matrix rows" in out.output
    (run / "bootstrap.json").write_text("{}")
    refused = CliRunner().invoke(app, ["export", "mlflow", str(run)])
    assert refused.exit_code == 2 and "fails audit verify" in refused.output


def test_run_with_mlflow_exports_through_the_same_path(small_run, monkeypatch, tmp_path):
    """``tournament run --mlflow-uri URI`` (and ``--mlflow``: the default store) export the finished
    run with ``export_run``; the tournament itself is the session's small run (not recomputed)."""
    import dataclasses

    from typer.testing import CliRunner

    import tournament.run as run_mod
    from tournament.cli import app

    run = tmp_path / "runs" / small_run.run_dir.name
    shutil.copytree(small_run.run_dir, run)
    monkeypatch.setattr(run_mod, "run_tournament", lambda *a, **k: dataclasses.replace(small_run, run_dir=run))
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    res = CliRunner().invoke(app, ["run", "--runs-dir", str(tmp_path / "runs"), "--mlflow-uri", uri])
    assert res.exit_code == 0, res.output
    n = len(pd.read_csv(run / "performance_matrix.csv"))
    assert f"mlflow:  {uri}" in res.output and f"{n} child runs for {n} matrix rows, exported" in res.output
    res = CliRunner().invoke(app, ["run", "--runs-dir", str(tmp_path / "runs"), "--mlflow"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "runs" / "mlflow" / "mlflow.db").is_file()
    c = MlflowClient(tracking_uri=uri)
    assert len(c.search_runs([c.get_experiment_by_name("wfaudit").experiment_id])) == n + 1


def test_run_with_mlflow_but_no_mlflow_fails_before_the_run(monkeypatch, tmp_path):
    """Without the extra, ``run --mlflow`` says which packages are missing before computing anything."""
    import importlib.util

    from typer.testing import CliRunner

    import tournament.run as run_mod
    from tournament.cli import app

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))

    def never(*a, **k):
        raise AssertionError("the tournament ran")
    monkeypatch.setattr(run_mod, "run_tournament", never)
    res = CliRunner().invoke(app, ["run", "--runs-dir", str(tmp_path), "--mlflow"])
    assert res.exit_code == 2 and 'MLflow export needs mlflow: pip install -e ".[mlflow]"' in res.output


def test_edited_ledger_refused_unless_forced(small_run, tmp_path):
    """An edited ledger record (not a file) fails verify at its seq: refused, or exported unverified."""
    bad = tmp_path / small_run.run_dir.name
    shutil.copytree(small_run.run_dir, bad)
    lines = (bad / "audit.jsonl").read_bytes().splitlines(keepends=True)
    i = next(k for k, line in enumerate(lines) if b'"type":"check"' in line and b'"pass"' in line)
    lines[i] = lines[i].replace(b'"pass"', b'"fail"', 1)
    (bad / "audit.jsonl").write_bytes(b"".join(lines))
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    with pytest.raises(LedgerError, match=f"seq {i}"):
        export_run(bad, tracking_uri=uri)
    forced = export_run(bad, tracking_uri=uri, force=True)
    tags = MlflowClient(tracking_uri=uri).get_run(forced.parent_run_id).data.tags
    assert tags["wfaudit.verified"] == "false" and f"seq {i}" in tags["wfaudit.verify_message"]
    assert forced.n_children == len(pd.read_csv(bad / "performance_matrix.csv"))
