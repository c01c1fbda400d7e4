"""DESIGN section 2's layout rules, enforced by import-linter on the real import graph."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    exe = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(exe), str(ROOT / "pyproject.toml")], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "broken" not in out.stdout.lower() or "0 broken" in out.stdout.lower()


def test_contracts_are_checked(tmp_path):
    """The linter does catch a forbidden import (the test above can fail)."""
    cfg = tmp_path / "cfg.toml"
    (tmp_path / "aaa").mkdir()
    (tmp_path / "aaa" / "__init__.py").write_text("import bbb\n")
    (tmp_path / "bbb").mkdir()
    (tmp_path / "bbb" / "__init__.py").write_text("")
    cfg.write_text('[tool.importlinter]\nroot_packages = ["aaa", "bbb"]\n'
                   '[[tool.importlinter.contracts]]\nname = "aaa must not import bbb"\ntype = "forbidden"\n'
                   'source_modules = ["aaa"]\nforbidden_modules = ["bbb"]\n')
    exe = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(exe), str(cfg)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode != 0
