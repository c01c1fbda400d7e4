"""The persistent store of compiled Clarabel programs (allocation/compiled_store.py).

A stored program must be the compiled one bit for bit (same map, index arrays, cones, offsets, so
the same Clarabel data and the same solution bit for bit), an entry written for another problem or
library version must never be read, and a damaged entry must be ignored and rewritten.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import allocation.compiled_store as store_mod
import allocation.native as native
from allocation.compiled import compile_clarabel, problem_data, solve_compiled
from allocation.compiled_store import CompiledStore, store_key
from allocation.native import ProblemCache, _build, _set, solve_native
from allocation.solve import solver_options
from tests.allocation.test_compiled import TOL, _case

GRID = [(2, 60), (7, 60), (20, 252), (33, 252)]


def _problem(kind: str, n: int, t: int, rows: bool, bounded: bool, seed: int):
    cov, caps, mu = _case(n, t, seed, rows, bounded)
    prob = _build(kind, n, len(caps.b), bounded, "quad")
    _set(prob, "quad", kind, cov, caps, mu, bounded)
    return prob


def _same_arrays(x: np.ndarray, y: np.ndarray) -> bool:
    return x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y)


@pytest.mark.parametrize("kind", ["min_variance", "max_sharpe"])
def test_stored_program_equals_the_compiled_one_bit_for_bit(kind: str, tmp_path) -> None:
    """Compile problem 1 and store it; build problem 2 of the same shape (other cvxpy ids, other
    values) and load it: everything equals problem 2's own compilation bit for bit, and so do the
    Clarabel data and the solution. Grid: N 2..33, with/without cluster rows and atom bounds."""
    store = CompiledStore(tmp_path)
    for n, t in GRID:
        for rows in (False, True):
            for bounded in (False, True):
                where = f"{kind} n={n} rows={rows} bounded={bounded}"
                first = _problem(kind, n, t, rows, bounded, seed=n)
                assert store.save(compile_clarabel(first.problem, first.variables), first.variables), where
                second = _problem(kind, n, t, rows, bounded, seed=n + 1000)
                loaded = store.load(second.problem, second.variables)
                assert loaded is not None, where
                fresh = compile_clarabel(second.problem, second.variables)
                for a, b in [(loaded.M.data, fresh.M.data), (loaded.M.indices, fresh.M.indices),
                             (loaded.M.indptr, fresh.M.indptr), (loaded.b_rows, fresh.b_rows),
                             *zip(loaded.P_index + loaded.A_index, fresh.P_index + fresh.A_index)]:
                    assert _same_arrays(np.asarray(a), np.asarray(b)), where
                assert loaded.M.shape == fresh.M.shape, where
                assert (loaded.n_x, loaded.n_rows, loaded.n_param, loaded.const_col) == \
                       (fresh.n_x, fresh.n_rows, fresh.n_param, fresh.const_col), where
                assert repr(loaded.cones) == repr(fresh.cones), where
                assert [(p.id, c, s) for p, c, s in loaded.params] == \
                       [(p.id, c, s) for p, c, s in fresh.params], where
                assert {k: (v[0], v[1], v[2], v[3] is not None and v[3].id) for k, v in loaded.variables.items()} == \
                       {k: (v[0], v[1], v[2], v[3] is not None and v[3].id) for k, v in fresh.variables.items()}, where
                for x, y in zip(problem_data(loaded), problem_data(fresh)):
                    if sp.issparse(x):
                        assert all(_same_arrays(a, b) for a, b in
                                   [(x.data, y.data), (x.indices, y.indices), (x.indptr, y.indptr)]), where
                    else:
                        assert _same_arrays(x, y), where
                sa, va = solve_compiled(loaded, solver_options("CLARABEL", TOL, n))
                sb, vb = solve_compiled(fresh, solver_options("CLARABEL", TOL, n))
                assert sa == sb and (va is None) == (vb is None), where
                if va is not None:
                    assert va.keys() == vb.keys(), where
                    assert all(_same_arrays(np.asarray(va[k]), np.asarray(vb[k])) for k in va), where


def _windows(kind: str, store: CompiledStore | None, compiles: list) -> list:
    """solve_native over a few windows of three shapes with one cache (as a worker does)."""
    cache = ProblemCache(store=store)
    out = []
    for i, (n, rows, bounded) in enumerate([(12, True, True), (5, False, False), (12, True, True),
                                            (9, True, False), (5, False, False)]):
        cov, caps, mu = _case(n, 120, 31 * i + 7, rows, bounded)
        res = solve_native(kind, cov, caps, mu, cache=cache, tol=TOL)
        out.append((res.weights.tobytes(), res.status, res.solver, tuple(res.attempts), res.cache_hit))
    return out


@pytest.mark.parametrize("kind", ["min_variance", "max_sharpe"])
def test_cold_warm_and_no_store_give_the_same_solves(kind: str, tmp_path, monkeypatch) -> None:
    """Same weights (bytes), statuses, attempts and cache hits without a store, with a cold one and
    with a warm one; the warm run compiles nothing (every program is read from the store)."""
    compiles: list = []
    real = native.compile_clarabel

    def counting(problem, variables):
        compiles.append(1)
        return real(problem, variables)

    monkeypatch.setattr(native, "compile_clarabel", counting)
    none = _windows(kind, None, compiles)
    n_none = len(compiles)
    cold = _windows(kind, CompiledStore(tmp_path), compiles)
    n_cold = len(compiles) - n_none
    warm = _windows(kind, CompiledStore(tmp_path), compiles)
    assert none == cold == warm
    assert n_none == n_cold == 3  # three shapes
    assert len(compiles) == n_none + n_cold  # warm: no compilation
    assert len(list(tmp_path.glob("*.npz"))) == 3 and not list(tmp_path.glob(".tmp-*"))


def test_a_changed_key_is_never_read(tmp_path, monkeypatch) -> None:
    """Another library version, another problem shape or a stored key that differs from the
    problem's (a file copied under another name) all miss; the problem is then compiled."""
    store = CompiledStore(tmp_path)
    prob = _problem("max_sharpe", 6, 60, True, True, seed=1)
    comp = compile_clarabel(prob.problem, prob.variables)
    assert store.save(comp, prob.variables)
    assert store.load(prob.problem, prob.variables) is not None
    # another cvxpy version: another file name, so a miss
    real = store_mod._versions
    monkeypatch.setattr(store_mod, "_versions", lambda: {**real(), "cvxpy": "0.0.0"})
    assert store.load(prob.problem, prob.variables) is None
    monkeypatch.setattr(store_mod, "_versions", real)
    # another shape (here: no bounds) never maps to the same entry
    other = _problem("max_sharpe", 6, 60, True, False, seed=1)
    assert store.path(store_key(other.problem, other.variables)) != store.path(store_key(prob.problem, prob.variables))
    assert store.load(other.problem, other.variables) is None
    # the stored key is checked on load: an entry renamed to another problem's file is refused
    store.path(store_key(prob.problem, prob.variables)).rename(store.path(store_key(other.problem, other.variables)))
    assert store.load(other.problem, other.variables) is None


def _flip_last_data_byte(good: bytes) -> bytes:
    """The entry with one bit of the map's stored values flipped (the zip stays readable)."""
    import io
    import zipfile
    src = zipfile.ZipFile(io.BytesIO(good))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = bytearray(src.read(info))
            if info.filename == "M_data.npy":
                data[-1] ^= 0x01
            dst.writestr(info, bytes(data))
    return out.getvalue()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "bit_flip"])
def test_a_damaged_entry_is_ignored_and_rewritten(damage: str, tmp_path) -> None:
    """A damaged file is not used (the solve is the store-less one) and is replaced by a good one."""
    kind, n = "min_variance", 8
    cov, caps, mu = _case(n, 90, 3, True, True)
    ref = solve_native(kind, cov, caps, mu, cache=ProblemCache(), tol=TOL)
    store = CompiledStore(tmp_path)
    solve_native(kind, cov, caps, mu, cache=ProblemCache(store=store), tol=TOL)
    (path,) = tmp_path.glob("*.npz")
    good = path.read_bytes()
    bad = {"garbage": b"not a zip file" * 10, "truncated": good[: len(good) // 2], "empty": b"",
           "bit_flip": _flip_last_data_byte(good)}[damage]
    assert bad != good
    path.write_bytes(bad)
    prob = _problem(kind, n, 90, True, True, seed=3)
    assert store.load(prob.problem, prob.variables) is None
    res = solve_native(kind, cov, caps, mu, cache=ProblemCache(store=store), tol=TOL)
    assert res.weights.tobytes() == ref.weights.tobytes() and res.attempts == ref.attempts
    assert path.read_bytes() == good
    assert store.load(prob.problem, prob.variables) is not None


def test_an_unwritable_store_only_costs_the_compilation(tmp_path) -> None:
    """A store whose folder cannot be created (a file is in the way) saves nothing; solves go on."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cov, caps, mu = _case(6, 60, 5, False, True)
    ref = solve_native("max_sharpe", cov, caps, mu, cache=ProblemCache(), tol=TOL)
    res = solve_native("max_sharpe", cov, caps, mu, cache=ProblemCache(store=CompiledStore(blocker / "sub")), tol=TOL)
    assert res.weights.tobytes() == ref.weights.tobytes()
