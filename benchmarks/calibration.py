"""Calibration of the audit's statistical verdicts by simulation (the habit of arch's own suite).

Every verdict the tournament prints is measured here on data whose truth is known:

- ``dsr_false_positive_rate``: zero-skill trial sets (30 trials, 1,000 days, Student-t(5)
  GARCH returns), the best trial by Sharpe, share with DSR > 0.95; the max over four designs
  (independent; one common factor at correlation 0.5 and 0.8; six clusters of five near-identical
  trials). Printed per design and per reading (``raw`` headline, ``clustered``, and the old
  ``participation`` count for comparison).
- ``paired_false_positive_rate``: families of ``m`` = 36 zero-difference pairs (correlation 0.7,
  GARCH), share of families where Holm rejects any pair (the family-wise error rate Holm
  controls), for the tournament's p-value (HAC, confirmed by the studentised bootstrap where it
  is at or below alpha) and for the HAC p-value alone.
- ``paired_power``: a planted difference of 1.0 in annualised Sharpe over 1,000 days (pair
  correlation 0.7): share detected at ``alpha`` alone and under Holm among ``m`` pairs.
- ``min_pvalue_vs_holm``: the smallest p-value the paired test can return (the confirming
  bootstrap's ``1 / (n + 1)``; the HAC p-value has no floor) divided by Holm's first threshold
  ``alpha / m`` at the full preset's ``m`` (252); below 1 means a rejection is possible. The old
  bootstrap p-value's ratio (``n_boot`` 1,000) is printed beside it.
- ``pbo_noise_mean``: PBO (CSCV, S = 16) of 30 zero-skill trials; ~0.5 when honest.
- ``sharpe_ci_coverage``: coverage of the true annualised Sharpe (1.0) by the 95% stationary-
  bootstrap CI on AR(1)-GARCH(1,1) Student-t returns of 1,000 days.

Each rate comes with its Monte Carlo standard error ``sqrt(p (1 - p) / reps)`` (``_se`` keys).
``--quick`` runs fewer replications (the ``make test`` version); ``--json`` prints JSON only.
Run: ``python benchmarks/calibration.py [--quick] [--json] [--seed N]``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit.statistics import deflated_sharpe, holm_correction, pbo_cscv, sharpe_ci  # noqa: E402
from audit.statistics.paired import (  # noqa: E402
    boot_size_for, sharpe_difference_hac, studentized_bootstrap_pvalue,
)

PPY = 365.0
ALPHA = 0.05
N_TRIALS = 30
N_DAYS = 1000
M_QUICK, M_FULL = 36, 252  # paired tests of the quick and full presets
DESIGNS = ("independent", "factor_0.5", "factor_0.8", "factor_0.95", "clustered")
READINGS = ("raw", "clustered", "participation")

FULL = {"dsr_reps": 2000, "paired_reps": 1000, "power_reps": 1000, "pbo_reps": 200,
        "ci_reps": 400, "ci_boot": 1000}
QUICK = {"dsr_reps": 150, "paired_reps": 150, "power_reps": 300, "pbo_reps": 8,
         "ci_reps": 50, "ci_boot": 300}


def _t(rng: np.random.Generator, shape, df: float = 5.0) -> np.ndarray:
    """Student-t draws scaled to unit variance."""
    return rng.standard_t(df, size=shape) / math.sqrt(df / (df - 2.0))


def garch(rng: np.random.Generator, z: np.ndarray, a: float = 0.08, b: float = 0.87) -> np.ndarray:
    """GARCH(1,1) filter of unit-variance shocks ``z`` (T x k): unconditional variance 1
    (``omega = 1 - a - b``)."""
    omega = 1.0 - a - b
    out = np.empty_like(z)
    h = np.ones(z.shape[1])
    for t in range(z.shape[0]):
        out[t] = np.sqrt(h) * z[t]
        h = omega + a * out[t] ** 2 + b * h
    return out


def trial_set(rng: np.random.Generator, design: str, n: int = N_TRIALS, t: int = N_DAYS,
              vol: float = 0.02) -> np.ndarray:
    """Zero-skill T x N daily returns (true mean 0) of one design."""
    if design == "independent":
        x = _t(rng, (t, n))
    elif design.startswith("factor_"):
        rho = float(design.split("_")[1])
        x = math.sqrt(rho) * _t(rng, (t, 1)) + math.sqrt(1.0 - rho) * _t(rng, (t, n))
    elif design == "clustered":
        k, size, within = 6, n // 6, 0.95
        c = np.repeat(_t(rng, (t, k)), size, axis=1)
        x = math.sqrt(within) * c + math.sqrt(1.0 - within) * _t(rng, (t, k * size))
    else:
        raise ValueError(design)
    return vol * garch(rng, x)


def dsr_rates(rng: np.random.Generator, reps: int, planted: float | None = None) -> dict:
    """Share of trial sets whose best trial has DSR > 0.95, per design and reading.

    ``planted``: annualised Sharpe added to trial 0 (power); None for the zero-skill null.
    """
    out: dict = {}
    for design in DESIGNS:
        hits = dict.fromkeys(READINGS, 0)
        for _ in range(reps):
            x = trial_set(rng, design)
            if planted is not None:
                x[:, 0] += planted / math.sqrt(PPY) * x[:, 0].std()
            sr = x.mean(axis=0) / x.std(axis=0, ddof=1)
            best = int(np.argmax(sr))
            r = deflated_sharpe(x[:, best], x, method="participation")
            hits["raw"] += r.dsr_raw > 0.95
            hits["clustered"] += r.dsr_clustered > 0.95
            hits["participation"] += r.dsr > 0.95
        out[design] = {k: v / reps for k, v in hits.items()}
    return out


def pairs(rng: np.random.Generator, t: int, k: int, rho: float = 0.7, edge_sharpe: float = 0.0,
          vol: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """``k`` independent pairs (T x k each): within a pair a common factor gives correlation
    ``rho``; GARCH(1,1) Student-t(5) returns; ``a`` gets an annualised Sharpe ``edge_sharpe``."""
    f = _t(rng, (t, k))
    z = math.sqrt(rho) * np.concatenate([f, f], axis=1) + math.sqrt(1.0 - rho) * _t(rng, (t, 2 * k))
    x = vol * garch(rng, z)
    x[:, :k] += edge_sharpe / math.sqrt(PPY) * vol
    return x[:, :k], x[:, k:]


def paired_rates(rng: np.random.Generator, reps: int, power_reps: int, m: int,
                 t: int = N_DAYS) -> dict:
    """Family-wise false-positive rate under Holm (m null pairs), single-test size, power.

    The tournament's paired p-value is ``max(p_hac, p_boot)`` where ``p_hac <= alpha`` (the
    studentised circular block bootstrap confirms, ``boot_size_for(m)`` draws), else ``p_hac``.
    The bootstrap is run here only where it can change the figure: for the family-wise rate
    (any Holm rejection needs the smallest p at or below ``alpha / m``) on pairs with
    ``p_hac <= alpha / m``; for power at ``alpha`` on pairs with ``p_hac <= alpha``. The HAC-only
    rates are reported beside them.
    """
    n_boot_m = boot_size_for(m, ALPHA)
    fam_hits = fam_hits_hac = single = 0
    for _ in range(reps):
        a, b = pairs(rng, t, m)
        p = np.array([sharpe_difference_hac(a[:, j], b[:, j])[3] for j in range(m)])
        single += int((p <= ALPHA).sum())
        fam_hits_hac += bool(holm_correction(p, ALPHA).reject.any())
        for j in np.flatnonzero(p <= ALPHA / m):
            pb, _ = studentized_bootstrap_pvalue(a[:, j], b[:, j], n_boot_m, int(rng.integers(2**31)))
            p[j] = max(p[j], pb)
        fam_hits += bool(holm_correction(p, ALPHA).reject.any())
    a, b = pairs(rng, t, power_reps, edge_sharpe=1.0)
    p_hac = np.array([sharpe_difference_hac(a[:, j], b[:, j])[3] for j in range(power_reps)])
    alone = holm1 = 0
    for j in range(power_reps):
        if p_hac[j] <= ALPHA:
            pb, _ = studentized_bootstrap_pvalue(a[:, j], b[:, j], n_boot_m, int(rng.integers(2**31)))
            alone += max(p_hac[j], pb) <= ALPHA
            holm1 += max(p_hac[j], pb) <= ALPHA / m  # Holm's first step: against m - 1 nulls
    return {"family_rate": fam_hits / reps, "family_rate_hac_only": fam_hits_hac / reps,
            "single_size_hac": single / (reps * m), "power_alone": alone / power_reps,
            "power_alone_hac_only": float(np.mean(p_hac <= ALPHA)),
            "power_holm_first_step": holm1 / power_reps, "n_boot_confirm": n_boot_m}


def pbo_noise(rng: np.random.Generator, reps: int) -> tuple[float, float]:
    vals = [pbo_cscv(trial_set(rng, "independent"), n_splits=16).pbo for _ in range(reps)]
    return float(np.mean(vals)), float(np.std(vals, ddof=1) / math.sqrt(reps))


def ar_garch(rng: np.random.Generator, t: int, sharpe_annual: float = 1.0, phi: float = 0.1,
             vol: float = 0.02) -> np.ndarray:
    """AR(1)-GARCH(1,1) Student-t returns whose true annualised Sharpe is ``sharpe_annual``.

    ``r_t = mu + phi (r_{t-1} - mu) + e_t``, ``e`` GARCH with unconditional variance ``s^2``:
    ``Var(r) = s^2 / (1 - phi^2)``; ``mu`` is set from the target Sharpe and that variance.
    """
    burn = 200
    e = garch(rng, _t(rng, (t + burn, 1)))[:, 0] * vol
    sd = vol / math.sqrt(1.0 - phi * phi)
    mu = sharpe_annual / math.sqrt(PPY) * sd
    r = np.empty(t + burn)
    prev = mu
    for i in range(t + burn):
        prev = mu + phi * (prev - mu) + e[i]
        r[i] = prev
    return r[burn:]


def ci_coverage(rng: np.random.Generator, reps: int, n_boot: int) -> float:
    hit = 0
    for i in range(reps):
        ci = sharpe_ci(ar_garch(rng, N_DAYS), PPY, seed=i, n_boot=n_boot, alpha=ALPHA)
        hit += ci.ci_low <= 1.0 <= ci.ci_high
    return hit / reps


def _se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1.0 - p), 1.0 / n) / n)


def calibrate(quick: bool = False, seed: int = 2026) -> dict:
    """All calibration figures (see the module docstring); deterministic given ``seed``."""
    cfg = QUICK if quick else FULL
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    dsr = dsr_rates(rng, cfg["dsr_reps"])
    dsr_power = dsr_rates(rng, max(cfg["dsr_reps"] // 4, 50), planted=2.5)
    paired = paired_rates(rng, cfg["paired_reps"], cfg["power_reps"], M_QUICK)
    pbo_mean, pbo_se = pbo_noise(rng, cfg["pbo_reps"])
    cov = ci_coverage(rng, cfg["ci_reps"], cfg["ci_boot"])
    head = max(dsr[d]["raw"] for d in DESIGNS)
    boot_floor = 1.0 / (1000 + 1.0)
    out = {
        "mode": "quick" if quick else "full", "seed": seed, "replications": cfg,
        "dsr_headline_method": "raw",
        "dsr_false_positive_rate": head, "dsr_false_positive_rate_se": _se(head, cfg["dsr_reps"]),
        "dsr_false_positive_rate_clustered": max(dsr[d]["clustered"] for d in DESIGNS),
        "dsr_false_positive_rate_participation": max(dsr[d]["participation"] for d in DESIGNS),
        "dsr_by_design": dsr,
        "dsr_power_planted_sharpe_2.5": dsr_power,
        "paired_false_positive_rate": paired["family_rate"],
        "paired_false_positive_rate_se": _se(paired["family_rate"], cfg["paired_reps"]),
        "paired_false_positive_rate_hac_only": paired["family_rate_hac_only"],
        "paired_m": M_QUICK,
        "paired_single_test_size_hac": paired["single_size_hac"],
        "paired_power": paired["power_alone"],
        "paired_power_se": _se(paired["power_alone"], cfg["power_reps"]),
        "paired_power_hac_only": paired["power_alone_hac_only"],
        "paired_power_holm_first_step": paired["power_holm_first_step"],
        "paired_n_boot_confirm": paired["n_boot_confirm"],
        # the confirming bootstrap's floor 1/(n+1) at the full preset's m, against alpha/m
        "min_pvalue_vs_holm": (1.0 / (boot_size_for(M_FULL, ALPHA) + 1.0)) / (ALPHA / M_FULL),
        "min_pvalue_vs_holm_bootstrap_1000": boot_floor / (ALPHA / M_FULL),
        "pbo_noise_mean": pbo_mean, "pbo_noise_mean_se": pbo_se,
        "sharpe_ci_coverage": cov, "sharpe_ci_coverage_se": _se(cov, cfg["ci_reps"]),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return out


TARGETS = {"dsr_false_positive_rate": ("<=", 0.06), "paired_false_positive_rate": ("<=", 0.06),
           "sharpe_ci_coverage": (">=", 0.93), "min_pvalue_vs_holm": ("<", 1.0)}


def _table(res: dict) -> str:
    rows = [("dsr_false_positive_rate (raw, headline)", res["dsr_false_positive_rate"],
             res["dsr_false_positive_rate_se"], "<= 0.06"),
            ("  clustered reading", res["dsr_false_positive_rate_clustered"], None, ""),
            ("  participation count (old headline)", res["dsr_false_positive_rate_participation"],
             None, ""),
            ("paired_false_positive_rate (Holm FWER, m=36)", res["paired_false_positive_rate"],
             res["paired_false_positive_rate_se"], "<= 0.06"),
            ("  HAC p-value alone", res["paired_false_positive_rate_hac_only"], None, ""),
            ("  HAC single-test size at 0.05", res["paired_single_test_size_hac"], None, ""),
            ("paired_power (Sharpe diff 1.0, 1000 d, alone)", res["paired_power"],
             res["paired_power_se"], "reported"),
            ("  HAC p-value alone", res["paired_power_hac_only"], None, ""),
            ("  power at Holm's first step (0.05/36)", res["paired_power_holm_first_step"], None, ""),
            ("min_pvalue_vs_holm (m=252, confirming bootstrap)", res["min_pvalue_vs_holm"], None, "< 1"),
            ("  old bootstrap (n_boot 1000)", res["min_pvalue_vs_holm_bootstrap_1000"], None, ""),
            ("pbo_noise_mean", res["pbo_noise_mean"], res["pbo_noise_mean_se"], "[0.4, 0.6]"),
            ("sharpe_ci_coverage (true SR 1.0)", res["sharpe_ci_coverage"],
             res["sharpe_ci_coverage_se"], ">= 0.93")]
    lines = [f"{'figure':50s} {'value':>10s} {'MC s.e.':>9s}  target"]
    for name, v, se, tgt in rows:
        lines.append(f"{name:50s} {v:10.4g} {'' if se is None else f'{se:9.4f}':>9s}  {tgt}")
    lines.append("DSR > 0.95 rate per design (raw / clustered / participation):")
    for d, v in res["dsr_by_design"].items():
        lines.append(f"  {d:14s} {v['raw']:.4f} / {v['clustered']:.4f} / {v['participation']:.4f}")
    lines.append("DSR power, one trial with annualised Sharpe 2.5 (raw / clustered):")
    for d, v in res["dsr_power_planted_sharpe_2.5"].items():
        lines.append(f"  {d:14s} {v['raw']:.4f} / {v['clustered']:.4f}")
    lines.append(f"{res['mode']} mode, seed {res['seed']}, {res['seconds']} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer replications (about 20 s)")
    ap.add_argument("--json", action="store_true", help="print JSON only")
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args(argv)
    res = calibrate(quick=args.quick, seed=args.seed)
    print(json.dumps(res, indent=2) if args.json else _table(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
