"""A persistent, cross-process store of compiled Clarabel programs (``compiled.CompiledClarabel``).

Why. ``compile_clarabel`` runs cvxpy's ``get_problem_data`` once per problem shape (kind, N, rows,
bounds) and process: ~20-40 ms each, and a worker of the full tournament preset meets ~500 shapes,
so every worker of every run paid ~10-20 s of CPU for programs that are pure functions of the shape
and of the cvxpy version. The compiled program is data (a sparse parameter-to-data map, index
arrays, cone sizes, column offsets), so it is written once to disk and read by every later worker
and run (~1 ms).

Key. The file name is the SHA-256 of a JSON description of everything the compilation depends on:
a format version, the cvxpy, clarabel, scipy and numpy versions, the canonicalisation backend,
``str(problem)`` (objective and constraints, written with the parameter and variable names), every
parameter's and variable's name, shape and attributes, and the requested variables' names. A
changed problem formulation, a changed library or a changed layout gives another key, so an entry
written for other code is never read. The full description is also stored in the entry and compared
on load (a hash collision or a hand-copied file is refused too).

Robustness. Entries are ``.npz`` files without pickles, with a SHA-256 checksum of their arrays, written to a temporary file in the same
folder and renamed (``os.replace``: readers see a whole file or none; two workers writing the same
entry write the same bytes). An entry that cannot be read, fails its checksum, whose stored key differs, or whose
arrays do not fit the problem (names, sizes, shapes) is ignored: the caller compiles and the entry
is rewritten. Only programs whose compiled parameters are the problem's own ``cp.Parameter``
objects are stored (then cvxpy's reductions have no parameter to lower at solve time, so the loaded
program needs no reduction chain); any other program is compiled in every process as before.

A loaded program is the compiled one bit for bit (tests/allocation/test_compiled_store.py), so the
solve, and every decision, is the same with a cold, warm, shared or absent store.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import clarabel
import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from allocation.compiled import CANON_BACKEND, CompiledClarabel

#: bump when the stored layout or the meaning of a field changes
FORMAT = 1

#: the cones a stored program may hold (``compile_clarabel`` accepts only these)
_CONES = {"ZeroConeT": clarabel.ZeroConeT, "NonnegativeConeT": clarabel.NonnegativeConeT}

#: what reading a damaged or foreign entry may raise; any of them means "not usable: recompile"
_UNREADABLE = (OSError, EOFError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile)


def _versions() -> dict:
    import scipy
    return {"cvxpy": cp.__version__, "clarabel": clarabel.__version__, "scipy": scipy.__version__,
            "numpy": np.__version__}


def _leaf(x) -> dict:
    attrs = {k: (v if isinstance(v, (bool, int, float, str)) or v is None else repr(v))
             for k, v in sorted(x.attributes.items()) if v}
    return {"name": x.name(), "shape": list(x.shape), "attributes": attrs}


def store_key(problem: cp.Problem, variables: list[cp.Variable]) -> dict:
    """Everything a compilation of ``problem`` for Clarabel depends on (see the module docstring)."""
    return {"format": FORMAT, "versions": _versions(), "canon_backend": CANON_BACKEND,
            "problem": str(problem),
            "parameters": [_leaf(p) for p in problem.parameters()],
            "variables": [_leaf(v) for v in problem.variables()],
            "requested": [v.name() for v in variables]}


def _digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _checksum(arrays: dict) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes (a damaged entry fails it)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class CompiledStore:
    """Compiled Clarabel programs under the folder ``root`` (created on first write). Explicit and
    passed by the caller (``native.ProblemCache.store``); ``None`` there keeps everything in memory."""

    root: Path

    def path(self, key: dict) -> Path:
        return Path(self.root) / f"{_digest(key)}.npz"

    def load(self, problem: cp.Problem, variables: list[cp.Variable]) -> Optional[CompiledClarabel]:
        """The stored program of ``problem`` bound to its parameters and variables, or None (no
        entry, or an entry that is unreadable, of another key or that does not fit)."""
        key = store_key(problem, variables)
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            checksum = str(arrays.pop("checksum")[()])
            if checksum != _checksum(arrays):
                return None
            meta = json.loads(str(arrays.pop("meta")[()]))
            if meta.get("key") != key:
                return None
            return _bind(meta, arrays, problem, variables)
        except _UNREADABLE:
            return None

    def save(self, comp: CompiledClarabel, variables: list[cp.Variable]) -> bool:
        """Write ``comp`` (atomically); False when it is not storable (see the module docstring) or
        the folder is not writable (the run goes on without the store)."""
        own = {p.id: p for p in comp.problem.parameters()}
        names = [p.name() for p in own.values()]
        if len(set(names)) != len(names) or any(p.id not in own for p, _, _ in comp.params):
            return False
        by_id = {v.id: v for v in variables}
        meta = {"key": store_key(comp.problem, variables), "n_param": comp.n_param,
                "const_col": comp.const_col, "n_x": comp.n_x, "n_rows": comp.n_rows,
                "cones": [[type(c).__name__, int(c.dim)] for c in comp.cones],
                "params": [[p.name(), int(col), int(size)] for p, col, size in comp.params],
                "variables": [[by_id[vid].name(), int(a), int(b), list(shape), leaf is not None]
                              for vid, (a, b, shape, leaf) in comp.variables.items()]}
        if any(c[0] not in _CONES for c in meta["cones"]):
            return False
        M = comp.M.tocsr()
        arrays = {"meta": np.array(json.dumps(meta, sort_keys=True)),
                  "M_data": M.data, "M_indices": M.indices, "M_indptr": M.indptr,
                  "M_shape": np.asarray(M.shape, dtype=np.int64),
                  "P_indices": comp.P_index[0], "P_indptr": comp.P_index[1],
                  "A_indices": comp.A_index[0], "A_indptr": comp.A_index[1], "b_rows": comp.b_rows}
        arrays["checksum"] = np.array(_checksum(arrays))
        path = self.path(meta["key"])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez(f, **arrays)
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except OSError:
            return False
        return True


def _bind(meta: dict, arrays: dict, problem: cp.Problem, variables: list[cp.Variable]) -> CompiledClarabel:
    """A ``CompiledClarabel`` of ``problem`` from a stored entry; ValueError when it does not fit."""
    own = {p.name(): p for p in problem.parameters()}
    params = []
    for name, col, size in meta["params"]:
        if name not in own or own[name].size != size:
            raise ValueError(f"stored parameter {name!r} does not fit the problem")
        params.append((own[name], int(col), int(size)))
    vars_by_name = {v.name(): v for v in variables}
    where = {}
    for name, start, stop, shape, has_leaf in meta["variables"]:
        var = vars_by_name.get(name)
        if var is None or list(var.shape) != list(shape) or stop - start != var.size:
            raise ValueError(f"stored variable {name!r} does not fit the problem")
        where[var.id] = (int(start), int(stop), var.shape, var if has_leaf else None)
    if set(where) != {v.id for v in variables}:
        raise ValueError("stored variables differ from the requested ones")
    n_x, n_rows, n_param = int(meta["n_x"]), int(meta["n_rows"]), int(meta["n_param"])
    shape = tuple(int(s) for s in arrays["M_shape"])
    p_ind, p_ptr = arrays["P_indices"], arrays["P_indptr"]
    a_ind, a_ptr, b_rows = arrays["A_indices"], arrays["A_indptr"], arrays["b_rows"]
    if (shape != (len(p_ind) + n_x + 1 + len(a_ind) + len(b_rows), n_param)
            or len(p_ptr) != n_x + 1 or len(a_ptr) != n_x + 1
            or not 0 <= int(meta["const_col"]) < n_param):
        raise ValueError("stored arrays do not fit the stored sizes")
    M = sp.csr_array((arrays["M_data"], arrays["M_indices"], arrays["M_indptr"]), shape=shape)
    cones = tuple(_CONES[kind](int(dim)) for kind, dim in meta["cones"])
    return CompiledClarabel(problem=problem, reductions=(), params=tuple(params), n_param=n_param,
                            const_col=int(meta["const_col"]), M=M, n_x=n_x, n_rows=n_rows,
                            P_index=(p_ind, p_ptr), A_index=(a_ind, a_ptr), b_rows=b_rows,
                            cones=cones, variables=where)
