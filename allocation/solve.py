"""What a backend's convex solve returns, and the solver chain both backends walk."""
from __future__ import annotations

import contextlib
import gc
import re
import warnings
from dataclasses import dataclass, field
from typing import Iterator, Optional

import numpy as np
import pandas as pd

#: cvxpy's warning for an OPTIMAL_INACCURATE status; it becomes the status ``optimal_inaccurate``.
_INACCURATE = re.compile(r"Solution may be inaccurate")
#: cvxpy's deprecation notice for riskfolio's ``onesvec * k`` (a matrix product written with ``*``).
_STAR_PRODUCT = re.compile(r"\s*This use of ``\*`` has resulted in matrix multiplication")

#: Solvers tried in order; the first one that returns an (inaccurate-)optimal point answers.
SOLVER_CHAIN = ("CLARABEL", "ECOS", "SCS")


#: From this many assets on, Clarabel factorises its KKT system with the supernodal ``faer`` LDL
#: (about 1.8x faster than the default ``qdldl`` at N = 500 on a dense covariance, same solution to
#: 1e-12); ``max_threads=1`` keeps it sequential, so results do not depend on the worker's core count.
FAER_MIN_ASSETS = 300


def solver_options(solver: str, tol: float, n_assets: int = 0) -> dict:
    """Keyword options per solver: Clarabel with tightened tolerances (``tol`` on the gaps and the
    feasibility); ECOS and SCS with their tight settings (SCS is first-order: 1e-9 is its floor)."""
    if solver == "CLARABEL":
        opts = {"tol_gap_abs": tol, "tol_gap_rel": tol, "tol_feas": tol, "max_iter": 500}
        if n_assets >= FAER_MIN_ASSETS:
            opts.update(direct_solve_method="faer", max_threads=1)
        return opts
    if solver == "ECOS":
        return {"abstol": max(tol, 1e-9), "reltol": max(tol, 1e-9), "feastol": max(tol, 1e-9),
                "max_iters": 500}
    if solver == "SCS":
        return {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iters": 100_000}
    raise ValueError(f"unknown solver {solver!r}")


@dataclass
class SolveResult:
    """Outcome of one convex solve. ``weights`` is None unless ``status`` starts with ``optimal``.

    ``status``: ``optimal``, ``optimal_inaccurate``, ``infeasible`` (the problem has no point: a
    documented rule applies) or ``failed`` (every solver of the chain failed; ``reason`` says how).
    """

    weights: Optional[np.ndarray]
    status: str
    solver: Optional[str] = None
    reason: Optional[str] = None
    attempts: list[str] = field(default_factory=list)
    cache_hit: Optional[bool] = None


@contextlib.contextmanager
def solver_warnings() -> Iterator[list[str]]:
    """Collect the two known cvxpy notices around a solve, and re-emit every other warning.

    Yields a list that receives ``"inaccurate"`` when cvxpy warned that the solution may be
    inaccurate (the caller turns it into a status). cvxpy's notice about riskfolio's ``*`` matrix
    product is third-party noise and is dropped here, at the edge, by its message.
    """
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield notes
    for w in caught:
        msg = str(w.message)
        if _INACCURATE.search(msg):
            notes.append("inaccurate")
        elif not _STAR_PRODUCT.match(msg):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


@contextlib.contextmanager
def riskfolio_runtime() -> Iterator[None]:
    """The Python runtime settings around one riskfolio call; neither reaches a number.

    - pandas' ``mode.string_storage`` is ``"python"``: riskfolio labels the frames it builds per
      asset and per cluster with strings (``columns=["weights"]``), which pandas >= 3 stores as
      Arrow strings by default; their construction and look-ups were ~20% of an ``HCPortfolio``
      HRP call. Labels only: the stored floats are the same.
    - the cyclic garbage collector is paused (and restored as it was): riskfolio's ``Portfolio``
      builds the cvxpy expressions of every risk measure on each call (~1,300), whose allocations
      triggered collections of the worker's whole heap: ~11% of the calls' time. riskfolio's
      objects are freed by reference counting (none was left for a collection after a call).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        with pd.option_context("mode.string_storage", "python"):
            yield
    finally:
        if enabled:
            gc.enable()


def clean_weights(w: np.ndarray) -> np.ndarray:
    """Clip solver noise below 0 and renormalise to sum to 1 (contracts.WEIGHT_SUM_TOL = 1e-8)."""
    w = np.clip(np.asarray(w, dtype=np.float64).ravel(), 0.0, None)
    w[w < 1e-12] = 0.0
    s = w.sum()
    if not np.isfinite(s) or s <= 0:
        raise ValueError("weights do not have a positive finite sum")
    return w / s
