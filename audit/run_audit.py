"""The run checks: every audit check of a finished run, computed from the run folder's files.

One implementation, called by the tournament after it wrote its files and by anyone auditing a run
folder: ``audit_run(run_dir, ...)`` reads ``cells.parquet``, ``returns.parquet``, ``weights.parquet``,
``positions.parquet``, ``windows.parquet``, the selection artifacts
``selection/<setting>/<k>/portfolio_candidates.json`` and the ledger's ``simulation`` records, never
the in-memory objects that built them, and returns every ``CheckResult``:

- ``metric_mismatch`` per cell: the simulator's own ``sim_sharpe`` / ``sim_max_drawdown`` /
  ``sim_total_return`` (``cells.parquet``) vs the recomputation from the cell's rows of
  ``returns.parquet`` under *that simulator's* stated conventions (``conventions[simulator]``);
- ``volatility_band`` per cell (profile from ``cells.parquet``);
- ``zero_bankruptcy`` per cell: equity recomputed from ``returns.parquet`` against the liquidation
  floor (any floor, not only -100%), consistent with the ``liquidated`` flag;
- ``directional`` per cell: weights and their recorded directions from ``weights.parquet``, the
  selected directions from the selection artifacts, units from ``positions.parquet``;
- ``funnel`` per setting, window and engine, from the selection artifacts;
- ``outlier_quarantine`` per window of the base setting (market-wide moves; needs market returns);
- ``simulator_disagreement`` (vectorbt vs reference cell of the same decisions) and
  ``backend_disagreement`` (native vs riskfolio weights, trial simulator: the riskfolio cell under
  ``verification: full``, else the verified windows of ``verification.parquet``);
- ``raw_returns``: the ledger's daily returns against ``returns.parquet``, bit for bit.

``INTEGRITY_CHECKS`` names the checks whose failure means the run's outputs are inconsistent (as
opposed to a finding about the strategy, such as a bankruptcy or a DRIFT); ``tournament run`` exits 3
when one of them fails.

``check_cells`` (mismatch, band, bankruptcy over ``cells``/``returns`` frames) and ``write_checks``
(check records through any ``append(type, spec_version, data)``) are the building blocks.
``spec_version_for_engine`` maps an engine name to the ``spec_version`` of its records (DESIGN
section 4): ``v4`` and ``v4:<scorer>`` -> ``4.0-mlops``; ``v3.4`` -> ``3.4``; ``raw`` and ``random``
-> ``baseline``. Run-level records use ``run``.
"""
from __future__ import annotations

import json
import os
from collections import namedtuple
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from audit.checks.bankruptcy import check_bankruptcy
from audit.checks.directional import check_directional
from audit.checks.funnel import check_funnel
from audit.checks.mismatch import MismatchTolerance, SimConventions, check_metric_mismatch
from audit.checks.quarantine import quarantine_windows
from audit.checks.result import CheckResult, CheckStatus, make_result
from audit.checks.vol_bands import check_volatility_band
from audit.positions_by_cell import PositionsByCell
from audit.raw_audit import check_ledger_vs_returns
from contracts.enums import Direction, RecordType, SpecVersion
from contracts.errors import ConfigError, DataError
from contracts.schemas import check_frame
from contracts.selection import Funnel

#: checks whose failure means the run's files disagree with each other or with the ledger
INTEGRITY_CHECKS = frozenset({"metric_mismatch", "raw_returns", "directional", "simulator_disagreement",
                              "funnel"})
#: vectorbt vs reference, per daily return: frictionless they agree to 1e-10; with costs the
#: simulation pillar documents the order-of-fills difference (see simulation.compare).
SIM_TOLERANCE = 1e-6
#: riskfolio vs native weights on well-posed problems (allocation pillar's agreement target).
BACKEND_TOLERANCE = 1e-4

#: what the directional check needs of a selected atom (read from the selection artifacts)
SelectedAtom = namedtuple("SelectedAtom", ["id", "direction"])


def spec_version_for_engine(engine: str) -> SpecVersion:
    """``spec_version`` of the records of a cell run by ``engine``."""
    if engine == "v4" or engine.startswith("v4:"):
        return SpecVersion.V4
    if engine == "v3.4":
        return SpecVersion.V34
    if engine in ("raw", "random"):
        return SpecVersion.BASELINE
    raise ConfigError(f"unknown engine {engine!r}: no spec_version rule")


def _conventions_for(conventions: SimConventions | Mapping[str, SimConventions], simulator: str
                     ) -> SimConventions:
    if isinstance(conventions, SimConventions):
        return conventions
    if simulator not in conventions:
        raise ConfigError(f"no stated metric conventions for simulator {simulator!r}")
    return conventions[simulator]


def check_cells(cells: pd.DataFrame, returns: pd.DataFrame,
                conventions: SimConventions | Mapping[str, SimConventions],
                tolerance: MismatchTolerance = MismatchTolerance(), *,
                liquidation_floor: float = -1.0, bands: Mapping[str, tuple[float, float]] | None = None,
                drift_threshold: float | None = None) -> list[CheckResult]:
    """Mismatch, volatility band and bankruptcy results for every cell (cells sorted by id).

    ``conventions``: one ``SimConventions`` for every cell, or one per simulator name (the
    ``simulator`` column of ``cells``). ``periods_per_year`` of the conventions is used for the bands
    too. ``bands`` (profile -> (lo, hi)) and ``drift_threshold``: the run's volatility bands (default:
    the product's). A cell of ``cells.parquet`` without returns raises ``DataError`` naming it.
    """
    c = check_frame(cells, "cells.parquet")
    r = check_frame(returns, "returns.parquet")
    groups = {str(k): g.sort_values("date", kind="stable") for k, g in r.groupby("cell_id")}
    bankrupt = {res.cell_id: res for res in check_bankruptcy(r, liquidation_floor=liquidation_floor)}
    out: list[CheckResult] = []
    for row in c.sort_values("cell_id", kind="stable").itertuples(index=False):
        cid = str(row.cell_id)
        if cid not in groups:
            raise DataError(f"returns.parquet has no rows for cell {cid} of cells.parquet")
        conv = _conventions_for(conventions, str(row.simulator))
        g = groups[cid]
        rets = g["return"].to_numpy(dtype=np.float64)
        out.append(check_metric_mismatch(
            cid, rets, sim_sharpe=float(row.sim_sharpe), sim_max_drawdown=float(row.sim_max_drawdown),
            sim_total_return=float(row.sim_total_return), conventions=conv, tolerance=tolerance))
        band_kw = {}
        if bands is not None:
            band_kw["band"] = bands[str(row.profile)]
        if drift_threshold is not None:
            band_kw["drift_threshold"] = drift_threshold
        out.append(check_volatility_band(cid, str(row.profile), rets, conv.periods_per_year,
                                         windows=g["window"].to_numpy(), **band_kw))
        out.append(bankrupt[cid])
    return out


def write_checks(append, results: Iterable[CheckResult],
                 spec_version_of_cell: dict[str, SpecVersion] | None = None) -> list[Any]:
    """Append one ``check`` record per result through ``append`` (an ``audit.ledger.LedgerWriter``,
    whose ``append`` is used, or any ``append(type, spec_version, data)`` callable). Each record's
    data carries ``key = check:<name>:<cell_id>:<window>`` (resume-safe writers append it once).
    A result's ``spec_version`` is ``spec_version_of_cell[cell_id]`` when given, else ``run``.
    """
    fn = getattr(append, "append", append)
    recs = []
    mapping = spec_version_of_cell or {}
    for res in results:
        spec = mapping.get(res.cell_id, SpecVersion.RUN) if res.cell_id else SpecVersion.RUN
        data = {"key": f"check:{res.name}:{res.cell_id}:{res.window}", **res.to_ledger_data()}
        recs.append(fn(RecordType.CHECK, spec, data))
    return recs


# -- selection artifacts -------------------------------------------------------------------------

@dataclass(frozen=True)
class SelectionArtifact:
    """One engine's selection in one window, as read from ``portfolio_candidates.json``."""

    setting_id: str
    window: int
    engine: str
    atoms: tuple[SelectedAtom, ...]
    funnel: Funnel | None
    pool_ids: tuple[str, ...]


def read_selections(run_dir: str | os.PathLike) -> list[SelectionArtifact]:
    """Every engine's selection of every window from ``selection/<setting>/<k>/portfolio_candidates.json``
    and the baselines' from ``baselines.json`` beside it (sorted by file, then engine). A malformed file
    raises ``DataError`` naming it."""
    root = Path(run_dir)
    out: list[SelectionArtifact] = []
    paths = sorted([*root.glob("selection/*/*/portfolio_candidates.json"), *root.glob("selection/*/*/baselines.json")])
    for path in paths:
        rel = path.relative_to(root).as_posix()
        sid, k = path.parent.parent.name, path.parent.name
        try:
            doc = json.loads(path.read_text())
            window = int(k)
            for engine, e in sorted(doc["engines"].items()):
                atoms = tuple(SelectedAtom(str(a["id"]), Direction(a["direction"])) for a in e["winners"])
                funnel = Funnel.model_validate(e["funnel"]) if e.get("funnel") else None
                out.append(SelectionArtifact(sid, window, engine, atoms, funnel, tuple(e.get("clusters") or {})))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{rel}: not a readable selection artifact ({exc})") from None
    return out


# -- the run checks ------------------------------------------------------------------------------

@dataclass
class RunAudit:
    """The outcome of ``audit_run``."""

    checks: list[CheckResult]
    #: quarantined window numbers of the base setting
    quarantined: list[int]
    #: cells that never held a position (every window in cash)
    no_position_cells: list[str] = field(default_factory=list)
    #: ``<setting>/<window>:<engine>`` with no winner (the whole window in cash)
    no_position_windows: list[str] = field(default_factory=list)

    @property
    def integrity_failures(self) -> list[str]:
        """Names of failed integrity checks (sorted, unique)."""
        return sorted({c.name for c in self.checks
                       if c.status is CheckStatus.FAIL and c.name in INTEGRITY_CHECKS})


def _setting_id(row) -> str:
    return f"s{int(row.step_size)}_t{int(row.train_window)}_l{int(row.feature_lookback)}"


def audit_run(run_dir: str | os.PathLike, *,
              conventions: SimConventions | Mapping[str, SimConventions],
              liquidation_floor: float = -1.0,
              base_setting_id: str | None = None,
              market_returns: pd.DataFrame | None = None,
              trial_simulator: str = "vectorbt",
              tolerance: MismatchTolerance = MismatchTolerance(),
              raw_returns: bool = True,
              bands: Mapping[str, tuple[float, float]] | None = None,
              drift_threshold: float | None = None,
              submit: Callable[..., Any] | None = None) -> RunAudit:
    """Every run check from the files of ``run_dir`` (see the module docstring).

    ``base_setting_id``: the setting whose windows are quarantine-checked (default: the first in
    ``windows.parquet``); ``market_returns``: dates x symbols daily simple returns (no quarantine check
    without it); ``raw_returns``: compare the ledger's returns with ``returns.parquet`` (needs the
    ledger's ``simulation`` records); ``bands``/``drift_threshold``: the run's volatility bands.
    ``submit``: ``submit(fn, *args)`` runs ``fn(*args)`` elsewhere and returns an object whose
    ``result()`` is its value (e.g. a task on a run's workers): the two heaviest parts, the directional
    check and the ledger's returns against ``returns.parquet`` (``directional_checks``,
    ``raw_returns_check``: each reads the files it needs from ``run_dir``), then run there while this
    process computes the others; the checks and their order are the same either way. None: here.
    """
    root = Path(run_dir)
    queued = {}
    if submit is not None:
        queued["directional"] = submit(directional_checks, str(root))
        if raw_returns:
            queued["raw_returns"] = submit(raw_returns_check, str(root))
    cells = check_frame(pd.read_parquet(root / "cells.parquet"), "cells.parquet")
    returns = check_frame(pd.read_parquet(root / "returns.parquet"), "returns.parquet")
    weights = check_frame(pd.read_parquet(root / "weights.parquet"), "weights.parquet")
    positions = PositionsByCell(root / "positions.parquet")  # one cell's rows decoded at a time
    windows = check_frame(pd.read_parquet(root / "windows.parquet"), "windows.parquet")
    vpath = root / "verification.parquet"  # absent in run folders of schema 1.0
    verification = check_frame(pd.read_parquet(vpath), "verification.parquet") if vpath.is_file() else None
    selections = read_selections(root)

    checks = check_cells(cells, returns, conventions, tolerance, liquidation_floor=liquidation_floor,
                         bands=bands, drift_threshold=drift_threshold)
    directional_at = len(checks)
    if "directional" not in queued:
        checks += _directional(cells, selections, weights, positions)
    checks += [check_funnel(s.window, s.funnel, [a.id for a in s.atoms], list(s.pool_ids),
                            engine=s.engine, cell_id=f"{s.setting_id}:{s.engine}")
               for s in selections if s.funnel is not None]
    quarantined: list[int] = []
    if market_returns is not None and len(windows):
        base = base_setting_id or str(windows["setting_id"].iloc[0])
        wod = {}
        for w in windows[windows["setting_id"] == base].itertuples(index=False):
            for d in market_returns.index[(market_returns.index >= w.test_start)
                                          & (market_returns.index <= w.test_end)]:
                wod[d] = int(w.window)
        q_ids, q_checks = quarantine_windows(market_returns, pd.Series(wod, dtype="int64"))
        quarantined = sorted(int(k) for k in q_ids)
        checks += q_checks
    checks += _verification(cells, returns, weights, trial_simulator, verification)
    if "raw_returns" in queued:
        checks.append(queued["raw_returns"].result())
    elif raw_returns:
        checks.append(check_ledger_vs_returns(root, returns))
    if "directional" in queued:
        checks[directional_at:directional_at] = queued["directional"].result()
    no_pos_cells = sorted(set(cells["cell_id"].astype(str)) - positions.held_cells())
    no_pos_windows = sorted(f"{s.setting_id}/{s.window}:{s.engine}" for s in selections if not s.atoms)
    return RunAudit(checks, quarantined, no_pos_cells, no_pos_windows)


def directional_checks(run_dir: str | os.PathLike) -> list[CheckResult]:
    """The ``directional`` check of every cell (by cell id), from ``cells.parquet``,
    ``weights.parquet``, ``positions.parquet`` and the selection artifacts of ``run_dir`` (one part of
    ``audit_run``, runnable on its own: in another process)."""
    root = Path(run_dir)
    cells = check_frame(pd.read_parquet(root / "cells.parquet"), "cells.parquet")
    weights = check_frame(pd.read_parquet(root / "weights.parquet"), "weights.parquet")
    return _directional(cells, read_selections(root), weights, PositionsByCell(root / "positions.parquet"))


def raw_returns_check(run_dir: str | os.PathLike) -> CheckResult:
    """The ``raw_returns`` check of ``run_dir``: the ledger's daily returns (its chain verified)
    against ``returns.parquet``, bit for bit (one part of ``audit_run``, runnable on its own)."""
    root = Path(run_dir)
    returns = check_frame(pd.read_parquet(root / "returns.parquet"), "returns.parquet")
    return check_ledger_vs_returns(root, returns)


def _directional(cells: pd.DataFrame, selections: list[SelectionArtifact], weights: pd.DataFrame,
                 positions: PositionsByCell) -> list[CheckResult]:
    by_engine_setting: dict[tuple[str, str], dict[int, tuple[SelectedAtom, ...]]] = {}
    for s in selections:
        by_engine_setting.setdefault((s.engine, s.setting_id), {})[s.window] = s.atoms
    w_by_cell = {str(cid): g for cid, g in weights.groupby("cell_id", sort=False)}
    empty_w = weights.iloc[:0]
    rows = {str(row.cell_id): row for row in cells.sort_values("cell_id", kind="stable").itertuples(index=False)}
    out = {}
    for cid in positions.file_order(rows):  # each row group of positions.parquet decoded about once
        row = rows[cid]
        atoms = by_engine_setting.get((str(row.engine), _setting_id(row)), {})
        out[cid] = check_directional(cid, atoms, w_by_cell.get(cid, empty_w).reset_index(drop=True),
                                     positions.cell(cid), checked=True)
    return [out[cid] for cid in rows]  # by cell id


def simulator_disagreement(cid: str, other: str, a: pd.DataFrame, r: pd.DataFrame) -> CheckResult:
    """The vectorbt cell ``cid`` against its reference twin ``other`` (each cell's returns sorted by
    date): PASS when both have the same dates and every daily return agrees within
    ``SIM_TOLERANCE`` (a fraction per day); different dates count as an infinite difference."""
    same = len(a) == len(r) and np.array_equal(a["date"].to_numpy(), r["date"].to_numpy())
    diff = float(np.max(np.abs(a["return"].to_numpy() - r["return"].to_numpy()), initial=0.0)) \
        if same else float("inf")
    st = CheckStatus.PASS if diff <= SIM_TOLERANCE else CheckStatus.FAIL
    return make_result("simulator_disagreement", st, {
        "vectorbt_cell": cid, "reference_cell": other, "max_abs_return_diff": diff,
        "tolerance": SIM_TOLERANCE}, cell_id=cid)


def _verification(cells: pd.DataFrame, returns: pd.DataFrame, weights: pd.DataFrame,
                  trial_simulator: str, verification: pd.DataFrame | None = None) -> list[CheckResult]:
    """Simulator disagreement (vectorbt vs reference) and backend disagreement (riskfolio vs native).

    Backend disagreement compares a native cell with its riskfolio cell (``verification: full``) or,
    under sampled verification, with the riskfolio weights of the verified windows in
    ``verification.parquet`` (native weights read from ``weights.parquet``)."""
    out = []
    index = {(r.engine, r.profile, r.backend, r.simulator, _setting_id(r)): str(r.cell_id)
             for r in cells.itertuples(index=False)}
    ret = {str(cid): g.sort_values("date", kind="stable") for cid, g in returns.groupby("cell_id")}
    for (e, p, b, s, sid), cid in sorted(index.items()):
        if s != "vectorbt":
            continue
        other = index.get((e, p, b, "reference", sid))
        if other is None:
            continue
        out.append(simulator_disagreement(cid, other, ret[cid], ret[other]))
    # cell -> window -> atom -> weight, in one pass over the rows (what a group-by per cell and
    # window gives, without a frame per group)
    w: dict[str, dict[int, dict[str, float]]] = {}
    for cid, k, atom, x in zip(weights["cell_id"].astype(str).tolist(), weights["window"].tolist(),
                               weights["atom_id"].astype(str).tolist(),
                               weights["weight"].astype(float).tolist()):
        w.setdefault(cid, {}).setdefault(int(k), {})[atom] = x
    for (e, p, b, s, sid), cid in sorted(index.items()):
        if b != "native" or s != trial_simulator:
            continue
        other = index.get((e, p, "riskfolio", s, sid))
        if other is None:
            continue
        wa, wb = w.get(cid, {}), w.get(other, {})
        diffs = {}
        for k in sorted(set(wa) | set(wb)):
            x, y = wa.get(k, {}), wb.get(k, {})
            diffs[int(k)] = max((abs(x.get(a, 0.0) - y.get(a, 0.0)) for a in set(x) | set(y)), default=0.0)
        md = float(max(diffs.values(), default=0.0))
        worst = max(diffs, key=diffs.get) if diffs else None
        st = CheckStatus.PASS if md <= BACKEND_TOLERANCE else CheckStatus.WARN
        out.append(make_result("backend_disagreement", st, {
            "native_cell": cid, "riskfolio_cell": other, "max_abs_weight_diff": md,
            "worst_window": worst, "tolerance": BACKEND_TOLERANCE}, cell_id=cid))
    if verification is not None and len(verification):
        out += _sampled_backend_disagreement(verification, w)
    return out


def _sampled_backend_disagreement(verification: pd.DataFrame,
                                  w: dict[str, dict[int, dict[str, float]]]) -> list[CheckResult]:
    """``backend_disagreement`` per native cell over its verified windows (sampled verification).

    The native side is read from ``weights.parquet``; the file's own ``weight_native`` column must
    agree with it (else the verification file does not describe this run: FAIL)."""
    out = []
    # rows grouped by cell and window in one pass (row order kept within a group, as a group-by does)
    groups: dict[str, dict[int, list[int]]] = {}
    cells = verification["cell_id"].tolist()
    windows = verification["window"].tolist()
    for i, (c, k) in enumerate(zip(cells, windows)):
        groups.setdefault(c, {}).setdefault(k, []).append(i)
    atom_ids = verification["atom_id"].tolist()
    atom_str = verification["atom_id"].astype(str).tolist()
    w_verify = verification["weight_verify"].astype(float).tolist()
    w_native = verification["weight_native"].astype(float).tolist()
    o_native = verification["objective_native"].tolist()
    o_verify = verification["objective_verify"].tolist()
    reason = verification["reason"].astype(str).tolist()
    for c in sorted(groups):
        cid = str(c)
        diffs, obj, copy_ok = {}, {}, True
        for k in sorted(groups[c]):
            rows_k = groups[c][k]
            native = w.get(cid, {}).get(int(k), {})
            rows = [i for i in rows_k if atom_ids[i] != ""]
            ver = {atom_str[i]: w_verify[i] for i in rows}
            recorded = {atom_str[i]: w_native[i] for i in rows}
            atoms = set(native) | set(ver)
            copy_ok &= all(abs(recorded.get(a, 0.0) - native.get(a, 0.0)) <= 1e-12 for a in atoms | set(recorded))
            diffs[int(k)] = max((abs(native.get(a, 0.0) - ver.get(a, 0.0)) for a in atoms), default=0.0)
            o = rows_k[0]
            obj[int(k)] = abs(float(o_native[o]) - float(o_verify[o]))
        md = float(max(diffs.values(), default=0.0))
        worst = max(diffs, key=diffs.get) if diffs else None
        finite = [v for v in obj.values() if np.isfinite(v)]
        st = (CheckStatus.FAIL if not copy_ok else CheckStatus.PASS if md <= BACKEND_TOLERANCE
              else CheckStatus.WARN)
        out.append(make_result("backend_disagreement", st, {
            "native_cell": cid, "riskfolio_cell": None, "mode": "sampled",
            "windows_verified": sorted(diffs),
            "reasons": sorted({reason[i] for rows_k in groups[c].values() for i in rows_k}),
            "max_abs_weight_diff": md, "worst_window": worst,
            "max_abs_objective_diff": float(max(finite)) if finite else None,
            "native_weights_match": bool(copy_ok), "tolerance": BACKEND_TOLERANCE}, cell_id=cid))
    return out


__all__ = ["INTEGRITY_CHECKS", "RunAudit", "SelectionArtifact", "audit_run", "check_cells",
           "directional_checks", "raw_returns_check", "read_selections", "spec_version_for_engine",
           "write_checks"]
