"""The audit is independent by construction: no import of simulation, allocation, selection."""
from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

AUDIT = pathlib.Path(__file__).resolve().parents[2] / "audit"
FORBIDDEN = {"simulation", "allocation", "selection", "reports", "tournament", "vectorbt",
             "empyrical", "quantstats"}


def test_no_forbidden_import_in_audit_sources():
    bad = []
    for path in sorted(AUDIT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            bad += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert bad == []


def test_importing_audit_loads_no_forbidden_package():
    code = ("import sys, audit.ledger, audit.verify, audit.metrics, audit.checks, audit.raw_audit;"
            "print(sorted({m.split('.')[0] for m in sys.modules} & %r))" % FORBIDDEN)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=AUDIT.parent)
    assert out.stdout.strip() == "[]"
