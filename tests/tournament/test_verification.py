"""Sampled verification of the native backend by riskfolio (``tournament.verification``).

Sampled verification must change no result (the native cells are the same as under ``verification:
full``), verify exactly the documented windows, and its riskfolio weights must be those riskfolio gives
on the same windows as a full cell. The audit's ``backend_disagreement`` reads them from
``verification.parquet`` and notices a file that does not describe the run.
"""
import json
import shutil

import pandas as pd
import pytest

from audit.run_audit import audit_run
from contracts import Allocation
from contracts.enums import Backend, Profile
from tests.tournament.conftest import small_config
from tournament.postprocess import sim_conventions
from tournament.run import run_tournament, schedules
from tournament.unit import UnitContext, derive_seed
from tournament.verification import flag_reason, sample_windows, verification_sample

OVER = dict(max_windows=4, verification_windows=2, engines=["v4", "raw", "random"],
            profiles=["equal_weight", "min_variance", "hrp", "max_sharpe"])


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    root = tmp_path_factory.mktemp("verif")
    sampled = run_tournament(small_config(**OVER), root / "sampled")
    full = run_tournament(small_config(**OVER, verification="full"), root / "full")
    return sampled, full


def test_sample_is_first_last_and_a_seeded_draw():
    idx = list(range(60))
    s = sample_windows(idx, 12, seed=5)
    assert len(s) == 12 and s[0] == 0 and s[-1] == 59 and s == sorted(set(s))
    assert s == sample_windows(idx, 12, seed=5) and s != sample_windows(idx, 12, seed=6)
    assert sample_windows([3, 4, 5], 12, seed=1) == [3, 4, 5]  # fewer windows than the sample: all


def test_flagged_trial_allocations_are_verified_outside_the_sample():
    cfg = small_config(**OVER)
    ctx = UnitContext(market=None, config=cfg, verify_windows=frozenset({0}))
    base = cfg.settings()[0]
    ok = Allocation(profile=Profile.HRP, backend=Backend.NATIVE, weights={"a": 1.0})
    for status, extra, reason in (("relaxed", {"relaxed": {"cluster_cap": 0.5}}, "trial_relaxed"),
                                  ("fallback", {"fallback_used": True}, "trial_fallback"),
                                  ("optimal_inaccurate", {}, "trial_inaccurate")):
        bad = ok.model_copy(update={"status": status, **extra})
        assert flag_reason(bad) == reason and ctx.verifies(base, 7, bad)
    assert flag_reason(ok) is None
    assert ctx.verifies(base, 0, ok) and not ctx.verifies(base, 7, ok)
    assert not UnitContext(market=None, config=small_config(**OVER, verification="full"),
                           verify_windows=frozenset({0})).verifies(base, 0, ok)  # full: cells, not samples


def test_sampled_changes_no_result_and_matches_full_riskfolio(both):
    sampled, full = both
    cs, cf = pd.read_parquet(sampled.run_dir / "cells.parquet"), pd.read_parquet(full.run_dir / "cells.parquet")
    assert set(cs["backend"]) == {"native"} and set(cf["backend"]) == {"native", "riskfolio"}
    native_f = cf[cf["backend"] == "native"]
    assert sorted(cs["cell_id"]) == sorted(native_f["cell_id"])
    for name in ("weights.parquet", "returns.parquet"):
        a, b = pd.read_parquet(sampled.run_dir / name), pd.read_parquet(full.run_dir / name)
        b = b[b["cell_id"].isin(cs["cell_id"])]
        key = ["cell_id", "window", "atom_id"] if name == "weights.parquet" else ["cell_id", "date"]
        pd.testing.assert_frame_equal(a.sort_values(key).reset_index(drop=True),
                                      b.sort_values(key).reset_index(drop=True), check_exact=True)
    # the riskfolio weights of the verified windows are those of the full run's riskfolio cells
    v = pd.read_parquet(sampled.run_dir / "verification.parquet")
    wf = pd.read_parquet(full.run_dir / "weights.parquet")
    twin = {r.cell_id: cf[(cf.engine == r.engine) & (cf.profile == r.profile) & (cf.simulator == r.simulator)
                          & (cf.backend == "riskfolio")]["cell_id"].iloc[0] for r in native_f.itertuples()
            if not r.engine.startswith("bh:")}  # the buy-and-hold baselines allocate nothing to verify
    for (cid, k), g in v[v["atom_id"] != ""].groupby(["cell_id", "window"]):
        ref = wf[(wf["cell_id"] == twin[cid]) & (wf["window"] == k)].set_index("atom_id")["weight"]
        got = g.set_index("atom_id")["weight_verify"]
        atoms = sorted(set(got.index) | set(ref.index))  # weights.parquet keeps zero weights, too
        pd.testing.assert_series_equal(got.reindex(atoms, fill_value=0.0), ref.reindex(atoms, fill_value=0.0),
                                       check_names=False, check_exact=True)


def test_only_the_documented_windows_are_verified(both):
    sampled, _ = both
    cfg = small_config(**OVER)
    sched = schedules(cfg, 520)
    base = cfg.settings()[0]
    sample = verification_sample(cfg, sched)
    assert sample == sample_windows([w.index for w in sched[base.id]], 2,
                                    derive_seed(cfg.seed, "verification", base.id))
    assert sample == [sched[base.id][0].index, sched[base.id][-1].index]
    v = pd.read_parquet(sampled.run_dir / "verification.parquet")
    assert set(v.loc[v["reason"] == "sample", "window"]) == set(sample)
    assert set(v.loc[v["reason"] != "sample", "reason"]) <= {"trial_relaxed", "trial_fallback", "trial_inaccurate"}
    # every (trial cell, sampled window) pair is there: 3 engines x 4 profiles (trial simulator)
    assert v.loc[v["reason"] == "sample"].groupby(["cell_id", "window"]).ngroups == 12 * len(sample)
    mat = pd.read_csv(sampled.run_dir / "performance_matrix.csv", keep_default_na=False).set_index("cell_id")
    for cid, g in v.groupby("cell_id"):
        assert mat.at[cid, "verified_windows"] == ";".join(str(k) for k in sorted(set(g["window"])))
        assert float(mat.at[cid, "backend_max_abs_weight_diff"]) == pytest.approx(
            (g["weight_native"] - g["weight_verify"]).abs().max(), rel=1e-9, abs=1e-15)  # CSV: 10 digits
    assert (mat.loc[~mat.index.isin(v["cell_id"]), "verified_windows"] == "").all()
    boot = json.loads((sampled.run_dir / "bootstrap.json").read_text())["verification"]
    assert boot["mode"] == "sampled" and boot["sample_windows"] == sample
    assert boot["windows_verified"] == sorted(set(v["window"]))
    assert boot["max_abs_weight_diff"] == pytest.approx(
        (v["weight_native"] - v["weight_verify"]).abs().max(), abs=0)


def test_backend_disagreement_reads_the_verification_file(both, tmp_path):
    sampled, _ = both
    checks = [c for c in audit_run(sampled.run_dir, conventions=sim_conventions(365)).checks
              if c.name == "backend_disagreement"]
    assert len(checks) == 12 and all(c.details["mode"] == "sampled" for c in checks)
    assert all(c.details["native_weights_match"] for c in checks)
    d = tmp_path / "run"
    shutil.copytree(sampled.run_dir, d)
    v = pd.read_parquet(d / "verification.parquet")
    i = v.index[v["atom_id"] != ""][0]
    v.loc[i, "weight_verify"] += 0.01  # riskfolio disagrees by 1%: a finding (WARN), not an integrity failure
    v.to_parquet(d / "verification.parquet", index=False)
    got = {c.cell_id: c for c in audit_run(d, conventions=sim_conventions(365)).checks
           if c.name == "backend_disagreement"}
    bad = got[v.loc[i, "cell_id"]]
    assert bad.status.value == "warn" and bad.details["max_abs_weight_diff"] >= 0.01 - 1e-9
    v.loc[i, "weight_native"] += 0.5  # the file no longer describes this run's native weights
    v.to_parquet(d / "verification.parquet", index=False)
    got = {c.cell_id: c for c in audit_run(d, conventions=sim_conventions(365)).checks
           if c.name == "backend_disagreement"}
    assert got[v.loc[i, "cell_id"]].status.value == "fail"
    assert not got[v.loc[i, "cell_id"]].details["native_weights_match"]
