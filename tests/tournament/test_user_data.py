"""`tournament data synth` + `tournament run --data --candidates`, and a single undated export."""
import json
import subprocess
import sys
from pathlib import Path

import yaml

from market.loaders import write_lakehouse
from market.synthetic import SyntheticConfig, generate
from tests.tournament.conftest import SMALL
from tournament.config import DataSpec
from tournament.market_io import load_market

EXE = str(Path(sys.executable).with_name("tournament"))


def test_data_synth_round_trip(tmp_path, synthetic_market):
    out = subprocess.run([EXE, "data", "synth", "--out", str(tmp_path / "m")], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    m = load_market(DataSpec(data=str(tmp_path / "m" / "lakehouse"), candidates=str(tmp_path / "m" / "snapshots")))
    assert m.closes.equals(synthetic_market.data.closes)
    assert m.snapshots.point_in_time and m.snapshots.dates == synthetic_market.snapshots.dates
    # missing fields (short histories) are derived the same way on both paths
    mem = load_market(DataSpec())
    assert (m.derived is None) == (mem.derived is None)
    if m.derived is not None:
        for f in m.derived:
            assert m.derived[f].equals(mem.derived[f]), f


def test_run_on_an_undated_export_is_flagged(tmp_path):
    syn = generate(SyntheticConfig(seed=11, n_bars=520, n_candidates=48))
    write_lakehouse(syn.data, tmp_path / "lh", fmt="csv")
    last = syn.snapshots.frames[syn.snapshots.dates[-1]]
    # one export, no date, scanner fields missing: derived from the bars up to each cut-off
    recs = [{"symbol": r.symbol, "logic": r.logic, "direction": r.direction, "sector": r.sector,
             "asset_type": r.asset_type, "exchange": r.exchange}
            for r in last.itertuples() if isinstance(r.sector, str)]
    (tmp_path / "export.json").write_text(json.dumps(recs))
    cfg = {k: v for k, v in SMALL.items() if k != "market"}
    cfg["engines"] = ["v4", "raw"]
    cfg["profiles"] = ["equal_weight"]
    cfg["backends"] = ["native"]
    cfg["simulators"] = ["reference"]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    out = subprocess.run([EXE, "run", "--config", str(tmp_path / "c.yaml"), "--data", str(tmp_path / "lh"),
                          "--candidates", str(tmp_path / "export.json"), "--runs-dir", str(tmp_path / "runs"),
                          "--no-report"], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    run_dir = next((tmp_path / "runs").iterdir())
    recs = [json.loads(x) for x in (run_dir / "audit.jsonl").read_text().splitlines()]
    warn = [r for r in recs if r["type"] == "warning"]
    assert warn and warn[0]["data"]["code"] == "single_undated_export"
    start = recs[0]["data"]["inputs"]
    assert start["point_in_time"] is False and start["derived_fields"] is True
    sel = [r for r in recs if r["type"] == "selection" and r["data"]["engine"] == "v4"]
    assert len(sel) == 3 and all(r["data"]["funnel"]["snapshot"] == len(recs_) for r, recs_ in
                                 zip(sel, [json.loads((tmp_path / "export.json").read_text())] * 3))
