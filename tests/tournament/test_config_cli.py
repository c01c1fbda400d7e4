"""Config validation and CLI error behaviour: one readable line, non-zero exit, nothing written."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from contracts.errors import ConfigError
from tournament.config import load_config

ROOT = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).with_name("tournament"))


def test_unknown_key_is_an_error(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("preset: quick\nbase:\n  step_size: 20\n  stepsize: 5\n")
    with pytest.raises(ConfigError, match=r"base.stepsize"):
        load_config(p)


def test_presets_and_overrides():
    full = load_config(preset="full")
    ids = [s.id for s in full.settings()]
    assert ids[0] == "s20_t252_l120" and "s5_t252_l120" in ids and "s20_t60_l120" in ids and "s20_t252_l250" in ids
    assert len(ids) == 7
    trial_cells = [c for c in full.cells() if full.is_trial(c)]
    # a trial = engine x profile x setting on native + vectorbt
    assert len(trial_cells) == len(full.engines) * len(full.profiles) * len(ids)
    q = load_config(preset="quick", overrides={"seed": 5, "base": {"step_size": 5}})
    assert q.seed == 5 and q.base.step_size == 5 and q.base.train_window == 252
    with pytest.raises(ConfigError, match="preset"):
        load_config(preset="nope")
    with pytest.raises(ConfigError, match="engines"):
        load_config(overrides={"engines": ["v5"]})


def _cli(*args, cwd):
    return subprocess.run([EXE, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_help_lists_commands():
    out = _cli("--help", cwd=ROOT)
    assert out.returncode == 0
    for cmd in ("run", "report", "data", "audit"):
        assert cmd in out.stdout


@pytest.mark.parametrize("args,needle", [
    (["run", "--data", "nofolder", "--candidates", "nosnaps"], "nofolder: data folder or file not found"),
    (["run", "--preset", "nope"], "unknown preset"),
    (["run", "--data", "x"], "give both data and candidates"),
    (["audit", "verify", "no_run"], "no_run"),
])
def test_cli_errors_are_one_line(tmp_path, args, needle):
    out = _cli(*args, "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path) if args[0] == "run" else _cli(*args, cwd=tmp_path)
    assert out.returncode != 0
    lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert needle in lines[0] and "Traceback" not in out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["runs"])  # nothing written outside runs


def test_debug_shows_traceback(tmp_path):
    out = _cli("--debug", "run", "--data", "nofolder", "--candidates", "x", "--runs-dir", str(tmp_path), cwd=tmp_path)
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_candidate_without_price_file(tmp_path):
    lh = tmp_path / "lh"
    lh.mkdir()
    (lh / "AAA.csv").write_text("date,close\n2022-01-01,1\n2022-01-02,2\n")
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    (snaps / "2022-01-01.json").write_text(json.dumps([{"symbol": "BBB", "logic": "mom", "direction": "LONG"}]))
    out = _cli("run", "--data", str(lh), "--candidates", str(snaps), "--benchmark", "AAA",
               "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert out.returncode == 2
    assert "candidate 'BBB' has no price file" in out.stderr


@pytest.mark.parametrize("option,value,key,file_value", [
    ("--executor", "serial", "executor", "process"),
    ("--workers", "3", "workers", 2),
    ("--scheduler", "tcp://127.0.0.1:9", "scheduler", "tcp://127.0.0.1:8"),
    ("--seed", "5", "seed", 11),
    ("--calendar", "exchange", "market.calendar", "crypto"),
    ("--benchmark", "ETHUSDT", "market.benchmark", "XRPUSDT"),
    ("--report", None, "report", False),
    ("--no-report", None, "report", True),
])
def test_a_cli_option_overrides_the_file_only_when_given(tmp_path, monkeypatch, option, value, key, file_value):
    """Precedence CLI > file > preset, for options actually given: each option once given (it wins)
    and once absent (the file's value stays)."""
    import yaml
    from typer.testing import CliRunner

    import tournament.run as run_mod
    from tournament.cli import app

    seen = []
    monkeypatch.setattr(run_mod, "run_tournament", lambda cfg, *a, **k: seen.append(cfg) or (_ for _ in ()).throw(
        SystemExit(0)))
    head, _, leaf = key.rpartition(".")
    doc = {"preset": "quick", **({head: {leaf: file_value}} if head else {leaf: file_value})}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(doc))

    def got(cfg):
        obj = cfg.market if head else cfg
        v = getattr(obj, leaf)
        return getattr(v, "value", v)

    base = ["run", "--config", str(tmp_path / "c.yaml"), "--runs-dir", str(tmp_path / "runs")]
    CliRunner().invoke(app, base)
    CliRunner().invoke(app, base + ([option, value] if value is not None else [option]))
    assert len(seen) == 2
    assert got(seen[0]) == file_value                                  # absent: the file's value
    expected = {"--report": True, "--no-report": False}.get(option, value)
    assert str(got(seen[1])) == str(expected)                          # given: the option's value
