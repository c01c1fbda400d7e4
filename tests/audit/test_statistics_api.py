"""audit.statistics as a whole: public API, allowed imports, seeds, JSON-ready results."""
from __future__ import annotations

import ast
import json
import pathlib
import sys

import numpy as np
import pandas as pd

import audit.statistics as stats_pkg
from audit.statistics import (
    deflated_sharpe, effective_trials, holm_correction, model_confidence_set, paired_sharpe_test,
    pbo_cscv, probabilistic_sharpe, sharpe_ci, spa_test,
)

ALLOWED = {"numpy", "scipy", "pandas", "arch", "numba", "contracts", "audit"}


def test_package_imports_only_allowed_modules() -> None:
    # The statistics kernels may import numpy, scipy, pandas, arch, numba (a compiler: the bootstrap
    # draws' kernel, as arch's own sampler), contracts, themselves and the standard library: nothing
    # of simulation/allocation (audit independence), no pydantic.
    pkg_dir = pathlib.Path(stats_pkg.__file__).parent
    for path in sorted(pkg_dir.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                roots = [node.module.split(".")[0]]
            else:
                continue
            for root in roots:
                assert root in ALLOWED or root in sys.stdlib_module_names, (path.name, root)
                if root == "audit":
                    assert (node.module or "").startswith("audit.statistics"), path.name


def _frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = rng.normal(0.0003, 0.01, (400, 5)) + np.array([0.0, 0.001, 0.0, -0.001, 0.0005])
    return pd.DataFrame(data, columns=list("abcde"))


def _run_all(seed: int) -> dict[str, object]:
    m = _frame()
    return {
        "sharpe_ci": sharpe_ci(m["a"], 365, seed=seed, n_boot=100).to_dict(),
        "psr": probabilistic_sharpe(m["b"]).to_dict(),
        "psr_flat": probabilistic_sharpe(np.zeros(50)).to_dict(),
        "sharpe_flat": sharpe_ci(np.zeros(50), 365, seed=seed).to_dict(),
        "dsr": deflated_sharpe(m["b"], m).to_dict(),
        "n_eff": effective_trials(m).to_dict(),
        "pbo": pbo_cscv(m, n_splits=8).to_dict(),
        "paired": paired_sharpe_test(m["a"], m["b"], 365, seed=seed, n_boot=100).to_dict(),
        "holm": holm_correction([0.01, 0.2, 0.03]).adjusted.tolist(),
        "spa": spa_test(m["a"], m[["b", "c"]], seed=seed, n_boot=100).to_dict(),
        "mcs": model_confidence_set(m, seed=seed, n_boot=100).to_dict(),
    }


def test_same_seed_identical_results_and_json_ready() -> None:
    a, b = _run_all(42), _run_all(42)
    # every result serialises to strict JSON (bootstrap.json): no NaN/inf, no numpy scalars
    text = json.dumps(a, sort_keys=True, allow_nan=False)
    assert text == json.dumps(b, sort_keys=True, allow_nan=False)
    c = _run_all(43)
    assert c["sharpe_ci"] != a["sharpe_ci"]  # the seed is really used
    assert c["paired"] != a["paired"]
