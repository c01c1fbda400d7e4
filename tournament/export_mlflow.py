"""Export a run folder to MLflow: one parent run per tournament, one child run per matrix row.

What each run holds is described in ``tournament.export_read`` (which reads the folder) and in the
README. This module only talks to MLflow, through ``MlflowClient`` (the optional extra
``pip install -e ".[mlflow]"``: ``mlflow-skinny`` plus SQLAlchemy and Alembic for the SQLite store).

- **Store**: any tracking URI; by default ``sqlite:///<runs folder>/mlflow/mlflow.db`` (the runs folder
  is the run folder's parent) with the artifacts beside it in ``<runs folder>/mlflow/artifacts``.
  MLflow 3's file store (``./mlruns``) refuses to open unless ``MLFLOW_ALLOW_FILE_STORE=true``, so
  the default is SQLite; a ``file:`` URI works when that variable is set.
- **Idempotent**: the key is the run id (tag ``wfaudit.run_id``). An export whose parent run already
  holds the same fingerprint (export format, ledger head, verify verdict, digests of the files read)
  and is marked complete is left as it is (``skipped``); any other export of that run id in the
  experiment (an older format, an interrupted export, a folder that changed since) is deleted
  (MLflow's soft delete: ``mlflow gc`` purges it) and the run is exported again. Either way the
  experiment holds one parent and one child per matrix row for the run id.
- **Verification**: a run that fails ``audit verify`` is refused (``LedgerError``) unless ``force``;
  a forced export carries ``wfaudit.verified = false`` and the verifier's message.
- **Batched**: every run's params, tags and metrics go through ``log_batch`` (at most 100 params,
  100 tags and 1000 metrics per call: MLflow's limits); the equity histories are the bulk.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from contracts.errors import LedgerError, ToolkitError
from tournament.export_read import RunExport, build_export

DEFAULT_EXPERIMENT = "wfaudit"
#: MLflow's log_batch limits (per call): metrics, params, tags, and all three together
MAX_METRICS, MAX_PARAMS, MAX_TAGS, MAX_ENTITIES = 1000, 100, 100, 1000
#: MLflow's param value limit (characters); longer values are cut with a marker
MAX_PARAM_VALUE = 6000
EQUITY_METRIC = "equity"


@dataclass(frozen=True)
class ExportResult:
    """Where an export went and what it holds. ``n_metric_values``: scalar metrics plus equity
    points logged (0 when ``skipped``); ``n_replaced``: earlier runs of this run id deleted."""

    tracking_uri: str
    experiment_name: str
    experiment_id: str
    parent_run_id: str
    n_children: int
    n_matrix_rows: int
    n_metric_values: int
    n_artifacts: int
    verified: bool
    skipped: bool
    n_replaced: int
    seconds: float


def default_tracking_uri(runs_dir: str | Path) -> str:
    """``sqlite:///<runs_dir>/mlflow/mlflow.db`` (absolute path)."""
    return f"sqlite:///{(Path(runs_dir).resolve() / 'mlflow' / 'mlflow.db').as_posix()}"


def require_mlflow() -> None:
    """Raise ``ToolkitError`` naming the extra when MLflow (or its SQLite store's packages) is missing."""
    import importlib.util

    missing = [m for m in ("mlflow", "sqlalchemy", "alembic") if importlib.util.find_spec(m) is None]
    if missing:
        raise ToolkitError(f"MLflow export needs {', '.join(missing)}: pip install -e \".[mlflow]\" "
                           "(mlflow-skinny, sqlalchemy, alembic)")


def _client(uri: str):
    require_mlflow()
    # an export of an audited run talks to its tracking store only: MLflow 3's usage telemetry
    # (an installation id under ~/.config and reports to mlflow.org) is off unless the environment
    # says otherwise
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.tracking import MlflowClient

    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=uri)
    client.search_experiments(max_results=1)  # opens (and on first use creates) the store
    return client


def _artifact_location(uri: str) -> str | None:
    """Beside a SQLite store: ``<db folder>/artifacts``; elsewhere the server's default."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / "artifacts").resolve().as_uri()
    return None


def _experiment(client, name: str, uri: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    return client.create_experiment(name, artifact_location=_artifact_location(uri))


def _runs_of(client, experiment_id: str, run_id: str) -> list:
    """Every active MLflow run (parent and children) tagged with this wfaudit run id."""
    from mlflow.entities import ViewType

    out, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string=f"tags.`wfaudit.run_id` = '{run_id}'",
                                  run_view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            return out


def _log(client, mlflow_run_id: str, *, metrics=(), params: dict | None = None, tags: dict | None = None) -> int:
    """``log_batch`` in as few calls as MLflow's limits allow (each call is one database commit, the
    export's main cost); returns the number of calls."""
    from mlflow.entities import Param, RunTag

    ps = [Param(k, v if len(v) <= MAX_PARAM_VALUE else v[:MAX_PARAM_VALUE - 12] + " [truncated]")
          for k, v in (params or {}).items()]
    ts = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
    ms = list(metrics)
    calls = 0
    while ps or ts or ms:
        p, ps = ps[:MAX_PARAMS], ps[MAX_PARAMS:]
        t, ts = ts[:MAX_TAGS], ts[MAX_TAGS:]
        room = MAX_ENTITIES - len(p) - len(t)
        m, ms = ms[:min(MAX_METRICS, room)], ms[min(MAX_METRICS, room):]
        client.log_batch(mlflow_run_id, metrics=m, params=p, tags=t)
        calls += 1
    return calls


def _scalars(values: dict[str, float], ts_ms: int) -> list:
    from mlflow.entities import Metric

    return [Metric(k, float(v), ts_ms, 0) for k, v in values.items()]


def _equity(ms, eq) -> list:
    from mlflow.entities import Metric

    return [Metric(EQUITY_METRIC, float(v), int(t), i) for i, (t, v) in enumerate(zip(ms, eq))]


def export_run(run_dir: str | Path, *, tracking_uri: str | None = None, experiment: str | None = None,
               force: bool = False, plan: RunExport | None = None) -> ExportResult:
    """Export ``run_dir`` (a finished run folder) to MLflow; see the module docstring.

    ``tracking_uri``: default ``default_tracking_uri(run_dir's parent)``; ``experiment``: default
    ``wfaudit``. Raises ``LedgerError`` when the run fails ``audit verify`` and ``force`` is false,
    ``ToolkitError`` when MLflow is not installed."""
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    plan = plan or build_export(run_dir)
    if not plan.verified and not force:
        raise LedgerError(f"{run_dir} fails audit verify ({plan.verify_message}): not exported "
                          "(--force exports it tagged wfaudit.verified=false)")
    uri = tracking_uri or default_tracking_uri(run_dir.resolve().parent)
    name = experiment or DEFAULT_EXPERIMENT
    client = _client(uri)
    exp_id = _experiment(client, name, uri)

    existing = _runs_of(client, exp_id, plan.run_id)
    parents = [r for r in existing if r.data.tags.get("wfaudit.role") == "tournament"]
    children = [r for r in existing if r.data.tags.get("wfaudit.role") == "cell"]
    if (len(parents) == 1 and len(existing) == 1 + len(plan.cells)
            and parents[0].data.tags.get("wfaudit.export_fingerprint") == plan.fingerprint
            and parents[0].data.tags.get("wfaudit.export_complete") == "true"):
        return ExportResult(uri, name, exp_id, parents[0].info.run_id, len(children), len(plan.cells), 0, 0,
                            plan.verified, True, 0, time.perf_counter() - t0)
    for r in existing:
        client.delete_run(r.info.run_id)

    parent = client.create_run(exp_id, start_time=plan.start_ms, run_name=plan.run_id,
                               tags={"wfaudit.run_id": plan.run_id, "wfaudit.role": "tournament",
                                     "wfaudit.export_complete": "false"})
    pid = parent.info.run_id
    _log(client, pid, params=plan.params, tags=plan.tags, metrics=_scalars(plan.metrics, plan.end_ms))
    n_values = len(plan.metrics)
    n_artifacts = 0
    for path, folder in plan.artifacts:
        if path.is_dir():
            client.log_artifacts(pid, str(path), artifact_path=folder)
            n_artifacts += sum(1 for p in path.rglob("*") if p.is_file())
        else:
            client.log_artifact(pid, str(path), artifact_path=folder or None)
            n_artifacts += 1
    for cell in plan.cells:
        child = client.create_run(exp_id, start_time=plan.start_ms, run_name=cell.name,
                                  tags={"mlflow.parentRunId": pid, **cell.tags})
        metrics = _scalars(cell.metrics, plan.end_ms) + _equity(cell.equity_ms, cell.equity)
        _log(client, child.info.run_id, params=cell.params, metrics=metrics)
        client.set_terminated(child.info.run_id, "FINISHED", end_time=plan.end_ms)
        n_values += len(metrics)
    client.set_tag(pid, "wfaudit.export_complete", "true")
    client.set_terminated(pid, "FINISHED", end_time=plan.end_ms)
    return ExportResult(uri, name, exp_id, pid, len(plan.cells), len(plan.cells), n_values, n_artifacts,
                        plan.verified, False, len(existing), time.perf_counter() - t0)
