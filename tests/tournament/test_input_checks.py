"""Bad input is caught up front: exit code 2, one line naming the flag, file, record or value at fault, and
no run folder left behind; a run that fails after its folder exists is marked failed in its ledger."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from market.loaders import write_lakehouse, write_snapshots
from market.synthetic import SyntheticConfig, generate
from tests.tournament.conftest import SMALL

EXE = str(Path(sys.executable).with_name("tournament"))


@pytest.fixture(scope="module")
def user_data(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("userdata")
    syn = generate(SyntheticConfig(seed=11, n_bars=520, n_candidates=48))
    write_lakehouse(syn.data, d / "lh", fmt="csv")
    write_snapshots(syn.snapshots, d / "snaps")
    cfg = {k: v for k, v in SMALL.items() if k != "market"}
    cfg.update(engines=["raw"], profiles=["equal_weight"], backends=["native"], simulators=["reference"])
    (d / "c.yaml").write_text(yaml.safe_dump(cfg))
    return d


@pytest.fixture
def data(user_data, tmp_path) -> Path:
    d = tmp_path / "data"
    shutil.copytree(user_data, d)
    return d


def _run(data: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, "run", "--config", str(data / "c.yaml"), "--data", str(data / "lh"),
                           "--candidates", str(data / "snaps"), "--runs-dir", str(data / "runs"), *extra],
                          capture_output=True, text=True, timeout=600)


def _one_line_error(out: subprocess.CompletedProcess, data: Path, *needles: str) -> str:
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, out.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    assert not (data / "runs").exists() or not any((data / "runs").iterdir()), "a run folder was left behind"
    return lines[0]


def _first_csv(data: Path, name: str | None = None) -> Path:
    return data / "lh" / name if name else sorted((data / "lh").glob("*.csv"))[0]


def _weekdays_only(data: Path) -> None:
    for p in (data / "lh").glob("*.csv"):
        df = pd.read_csv(p)
        df = df[pd.to_datetime(df["date"], utc=True).dt.day_of_week < 5]
        df.to_csv(p, index=False)


def test_weekday_only_data_on_the_crypto_calendar_names_the_flag(data):
    _weekdays_only(data)
    _one_line_error(_run(data, "--calendar", "crypto"), data, "--calendar", "weekend")


def test_an_unknown_calendar_is_refused_before_any_data_is_read(data, tmp_path):
    out = subprocess.run([EXE, "run", "--config", str(data / "c.yaml"), "--data", str(tmp_path / "nowhere"),
                          "--candidates", str(tmp_path / "nowhere"), "--runs-dir", str(data / "runs"),
                          "--calendar", "lunar"], capture_output=True, text=True, timeout=300)
    _one_line_error(out, data, "calendar", "lunar")  # the missing folder is never reached


def test_a_missing_benchmark_names_the_flag_and_lists_symbols(data):
    line = _one_line_error(_run(data, "--benchmark", "SPX"), data, "'SPX'", "--benchmark", "symbols present")
    assert sorted(p.stem for p in (data / "lh").glob("*.csv"))[0] in line


def test_an_unparseable_date_is_one_line_naming_the_file(data):
    p = _first_csv(data)
    df = pd.read_csv(p)
    df.loc[3, "date"] = "2021-13-45"
    df.to_csv(p, index=False)
    _one_line_error(_run(data), data, p.name, "date")


def test_a_binary_price_file_is_one_line(data):
    p = _first_csv(data).with_suffix(".parquet")
    _first_csv(data).unlink()
    p.write_bytes(bytes(range(256)) * 8)
    _one_line_error(_run(data), data, p.name, "cannot be read")


def test_an_offset_timestamp_is_blamed_on_its_own_file(data):
    files = sorted((data / "lh").glob("*.csv"))
    bad = files[len(files) // 2]
    df = pd.read_csv(bad)
    df["date"] = pd.to_datetime(df["date"], utc=True).dt.tz_convert("Asia/Karachi").map(lambda t: t.isoformat())
    df.to_csv(bad, index=False)
    line = _one_line_error(_run(data), data, bad.name, "+05:00")
    assert all(f.name not in line for f in files if f != bad)


def _edit_snapshot(data: Path, fn) -> Path:
    p = sorted((data / "snaps").glob("*.json"))[2]
    recs = json.loads(p.read_text())
    fn(recs)
    p.write_text(json.dumps(recs))
    return p


def test_a_negative_traded_value_names_the_snapshot_and_record(data):
    p = _edit_snapshot(data, lambda recs: recs[4].__setitem__("Value.Traded", -5.0e6))
    _one_line_error(_run(data), data, p.name, "record 4", "Value.Traded", "negative")


def test_conflicting_duplicate_records_are_an_error(data):
    def dup(recs):
        twin = dict(recs[1])
        twin["ROC"] = (twin.get("ROC") or 0.0) + 7.0
        recs.append(twin)
    p = _edit_snapshot(data, dup)
    _one_line_error(_run(data), data, p.name, "records 1 and", "conflict on ROC")


def test_an_unknown_direction_echoes_the_value(data):
    p = _edit_snapshot(data, lambda recs: recs[0].__setitem__("direction", "SIDEWAYS"))
    _one_line_error(_run(data), data, p.name, "record 0", "'SIDEWAYS'")


def test_a_failure_after_the_folder_exists_marks_the_run_failed(tmp_path, monkeypatch):
    """The folder stays (it holds finished units a resume can reuse) and its ledger says the run failed."""
    import tournament.run as run_mod
    from audit.verify import verify_ledger
    from tests.tournament.conftest import small_config

    def boom(*a, **k):
        raise RuntimeError("worker lost\nsecond line")
        yield  # pragma: no cover

    monkeypatch.setattr(run_mod.Session, "units", boom)  # the run's executor session (executors.Session)
    with pytest.raises(RuntimeError):
        run_mod.run_tournament(small_config(), tmp_path)
    run_dir = next(tmp_path.iterdir())
    last = json.loads((run_dir / "audit.jsonl").read_text().splitlines()[-1])
    assert last["type"] == "warning" and last["data"]["code"] == "run_failed"
    assert last["data"]["message"] == "worker lost"
    rep = verify_ledger(run_dir, require_run_end=True)
    assert not rep.ok and "the run FAILED" in rep.message and "worker lost" in rep.message
