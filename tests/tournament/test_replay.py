"""`tournament audit replay`: an auditor re-executes a run from its folder and gets the same numbers, or the
first difference; a replay on other data is refused."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from audit.canonical import canonical_bytes, parse_line, record_hash
from audit.verify import file_sha256, verify_ledger
from tests.tournament.conftest import SMALL, small_config

EXE = str(Path(sys.executable).with_name("tournament"))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=900)


def test_replay_of_a_run_is_identical(small_run, tmp_path):
    out = _cli("audit", "replay", str(small_run.run_dir), "--out", str(tmp_path / "replay"))
    assert out.returncode == 0, out.stderr
    assert "replayed: identical" in out.stdout
    assert len(list((tmp_path / "replay").iterdir())) == 1


def _rechain_with_new_digests(d: Path, rel: str) -> None:
    """What a forger with the code does after editing a file: rewrite its digest in the artifact
    record and in run_end, then recompute every hash from there to the end."""
    lines = (d / "audit.jsonl").read_bytes().split(b"\n")[:-1]
    new = file_sha256(d / rel)
    size = (d / rel).stat().st_size
    prev, out = "0" * 64, []
    for line in lines:
        rec = parse_line(line)
        if rec["type"] == "artifact" and rec["data"]["path"] == rel:
            rec["data"].update(sha256=new, bytes=size, key=f"artifact:{rel}:{new}")
        if rec["type"] == "run_end" and rel in rec["data"]["artifacts"]:
            rec["data"]["artifacts"][rel] = new
        rec["prev_hash"] = prev
        rec["hash"] = record_hash({k: v for k, v in rec.items() if k != "hash"})
        prev = rec["hash"]
        out.append(canonical_bytes(rec))
    (d / "audit.jsonl").write_bytes(b"\n".join(out) + b"\n")


def test_an_edited_and_rechained_run_is_caught_by_replay(small_run, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(small_run.run_dir, d)
    ret = pd.read_parquet(d / "returns.parquet")
    cid = sorted(ret["cell_id"].unique())[1]
    i = ret.index[ret["cell_id"] == cid][5]
    date = pd.Timestamp(ret.at[i, "date"])
    ret.at[i, "return"] += 0.01
    ret.to_parquet(d / "returns.parquet", index=False)
    _rechain_with_new_digests(d, "returns.parquet")
    assert verify_ledger(d, require_run_end=True).ok  # without a pinned head the chain alone passes
    out = _cli("audit", "replay", str(d), "--out", str(tmp_path / "replay"))
    assert out.returncode == 1, out.stdout
    first = out.stderr.splitlines()[0]
    assert "first difference: returns.parquet" in first and cid in first and str(date.date()) in first
    assert "field return" in first


def test_a_replay_on_other_data_is_refused(small_run, tmp_path):
    syn = _cli("data", "synth", "--out", str(tmp_path / "m"), "--seed", "8")
    assert syn.returncode == 0, syn.stderr
    out = _cli("audit", "replay", str(small_run.run_dir), "--data", str(tmp_path / "m" / "lakehouse"),
               "--candidates", str(tmp_path / "m" / "snapshots"), "--out", str(tmp_path / "replay"))
    assert out.returncode == 2
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "lakehouse" in lines[0] and "sha256" in lines[0] and "not the data" in lines[0]
    assert not (tmp_path / "replay").exists()


def test_replay_of_a_killed_and_resumed_run(tmp_path):
    from tournament.replay import replay_run
    from tournament.run import run_tournament

    first = run_tournament(small_config(engines=["v4", "raw"], profiles=["equal_weight", "hrp"]), tmp_path / "runs",
                           stop_after_units=1)
    run_tournament(None, tmp_path / "runs", resume=first.run_dir)
    recs = [json.loads(x) for x in (first.run_dir / "audit.jsonl").read_text().splitlines()]
    assert any(r["type"] == "resume" for r in recs)
    rep = replay_run(first.run_dir, out_dir=tmp_path / "replay")
    assert rep.identical, rep.first.line() if rep.first else ""


@pytest.mark.slow
def test_replay_on_another_executor_and_of_a_user_data_run(small_run, tmp_path):
    from market.loaders import write_lakehouse, write_snapshots
    from market.synthetic import SyntheticConfig, generate
    from tournament.replay import replay_run
    from tournament.run import run_tournament

    rep = replay_run(small_run.run_dir, out_dir=tmp_path / "r1", overrides={"executor": "process", "workers": 2})
    assert rep.identical, rep.first.line() if rep.first else ""
    syn = generate(SyntheticConfig(seed=11, n_bars=520, n_candidates=48))
    write_lakehouse(syn.data, tmp_path / "lh", fmt="csv")
    write_snapshots(syn.snapshots, tmp_path / "snaps")
    cfg = small_config(market={"data": str(tmp_path / "lh"), "candidates": str(tmp_path / "snaps")},
                       engines=["v4", "raw"], profiles=["equal_weight"])
    out = run_tournament(cfg, tmp_path / "runs")
    rep = replay_run(out.run_dir, out_dir=tmp_path / "r2")
    assert rep.identical, rep.first.line() if rep.first else ""
    assert SMALL  # the same small preset
