"""Same inputs, config and seeds give identical results on every executor and worker count
(DESIGN section 3: returns, weights, positions, performance matrix and per-unit decision records)."""
import json

import pandas as pd
import pytest

from tests.tournament.conftest import small_config
from tournament.run import run_tournament

VOLATILE = {"seconds", "execution"}  # timings and cache statistics: execution, not decisions


def _decisions(run_dir):
    out = {}
    for line in (run_dir / "audit.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["type"] in ("selection", "allocation", "simulation", "check", "window"):
            data = {k: v for k, v in r["data"].items() if k not in VOLATILE}
            out[data.get("key")] = (r["type"], r["spec_version"], data)
    return out


def _frames(run_dir):
    return {n: pd.read_parquet(run_dir / n) for n in ("returns.parquet", "weights.parquet", "positions.parquet")} | \
        {"matrix": pd.read_csv(run_dir / "performance_matrix.csv")}


@pytest.mark.parametrize("executor,workers", [("process", 2), ("dask", 2)])
def test_executors_identical(small_run, tmp_path, executor, workers):
    cfg = small_config(executor=executor, workers=workers)
    other = run_tournament(cfg, tmp_path)
    a, b = _frames(small_run.run_dir), _frames(other.run_dir)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)
    assert _decisions(small_run.run_dir) == _decisions(other.run_dir)
