"""The ``tournament`` command line. Errors print one readable line (``--debug`` shows the traceback)."""
from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Optional

import typer

from contracts.errors import ToolkitError


def _numba_cache_dir() -> None:
    """numba's compiled-function cache goes to the user's cache folder (``$XDG_CACHE_HOME`` or
    ``~/.cache``, ``wfaudit/numba``), never into the installed package's source folder; an explicit
    ``NUMBA_CACHE_DIR`` wins. Set before anything imports numba."""
    if "NUMBA_CACHE_DIR" not in os.environ:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        os.environ["NUMBA_CACHE_DIR"] = os.path.join(base, "wfaudit", "numba")


_numba_cache_dir()

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Walk-forward backtesting and forensic audit toolkit.")
data_app = typer.Typer(no_args_is_help=True, help="Data tools: write the synthetic market.")
audit_app = typer.Typer(no_args_is_help=True, help="Audit tools: verify a run's ledger, recompute its metrics.")
export_app = typer.Typer(no_args_is_help=True, help="Export a run folder: MLflow.")
app.add_typer(data_app, name="data")
app.add_typer(audit_app, name="audit")
app.add_typer(export_app, name="export")

_STATE = {"debug": False}


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")) -> None:
    """Walk-forward backtesting and forensic audit toolkit."""
    _STATE["debug"] = debug


def _fail(exc: BaseException) -> None:
    """One line on stderr (a parser's multi-line hints are folded into it; ``--debug`` shows all)."""
    if _STATE["debug"]:
        traceback.print_exception(exc)
    notes = "; ".join(getattr(exc, "__notes__", []) or [])
    msg = f"error: {exc}" + (f" ({notes})" if notes else "")
    msg = " ".join(part.strip() for part in msg.splitlines() if part.strip())
    typer.echo(msg[:1000] + (" ..." if len(msg) > 1000 else ""), err=True)
    raise typer.Exit(code=2)


def _guard(fn):
    try:
        return fn()
    except ToolkitError as exc:
        _fail(exc)
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        _fail(exc)


#: exit codes of ``tournament run``: 0 done; 2 bad input or configuration (one line on stderr);
#: 3 the run finished but an integrity check failed (its outputs disagree with each other or with the
#: ledger: see the check summary printed and bootstrap.json)
EXIT_INTEGRITY = 3


@app.command()
def run(
    preset: Optional[str] = typer.Option(None, help="quick (default, about a minute), full, or large (1,000 candidates; long)."),
    config: Optional[Path] = typer.Option(None, help="YAML config file (unknown keys are errors)."),
    data: Optional[Path] = typer.Option(None, help="Lakehouse folder or wide close file (default: synthetic)."),
    candidates: Optional[Path] = typer.Option(None, help="Snapshot folder (YYYY-MM-DD.json) or one undated export."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where run folders are created."),
    resume: Optional[Path] = typer.Option(None, help="Finish this run folder after a crash (its own config; "
                                                      "only --executor, --workers, --scheduler, --report may be given)."),
    executor: Optional[str] = typer.Option(None, help="serial, process or dask."),
    workers: Optional[int] = typer.Option(None, help="Worker processes (process/dask)."),
    scheduler: Optional[str] = typer.Option(None, help="Dask scheduler address (default: a LocalCluster)."),
    seed: Optional[int] = typer.Option(None, help="Base seed."),
    calendar: Optional[str] = typer.Option(None, help="crypto (365) or exchange (252); default: inferred from the data."),
    benchmark: Optional[str] = typer.Option(None, help="Benchmark symbol for beta."),
    report: Optional[bool] = typer.Option(None, "--report/--no-report",
                                          help="Render the HTML report (default: the config's `report`, true)."),
    mlflow: bool = typer.Option(False, "--mlflow", help="Export the finished run to MLflow (`tournament export "
                                                        "mlflow`), by default to the SQLite store under the runs folder."),
    mlflow_uri: Optional[str] = typer.Option(None, "--mlflow-uri", metavar="URI",
                                             help="Export the finished run to this MLflow tracking URI "
                                                  "(implies --mlflow)."),
) -> None:
    """Run a tournament (selection x allocation x simulation, audited) and print where its outputs are.

    Exit codes: 0 done; 2 bad input (one line naming the file, field or flag); 3 an integrity check
    failed (the check summary says which)."""
    from tournament.config import load_config
    from tournament.run import run_tournament

    def go():
        if mlflow or mlflow_uri:
            from tournament.export_mlflow import require_mlflow

            require_mlflow()  # before the run, not after it
        overrides: dict = {}
        market = {}
        if data is not None or candidates is not None:
            market.update({"data": str(data) if data else None,
                           "candidates": str(candidates) if candidates else None})
        if calendar:
            market["calendar"] = calendar
        if benchmark:
            market["benchmark"] = benchmark
        if market:
            overrides["market"] = market
        for k, v in (("executor", executor), ("workers", workers), ("scheduler", scheduler), ("seed", seed),
                     ("report", report)):
            if v is not None:
                overrides[k] = v
        if resume is not None:
            if config is not None or preset is not None:
                overrides["config" if config is not None else "preset"] = str(config or preset)
            out = run_tournament(None, runs_dir, resume=resume, progress=_progress(), resume_overrides=overrides)
        else:
            cfg = load_config(config, preset, overrides)
            out = run_tournament(cfg, runs_dir, progress=_progress())
        typer.echo(f"run:     {out.run_dir}")
        typer.echo(f"ledger:  {out.ledger}")
        typer.echo(f"head:    {out.head_seq} {out.head_hash}  (keep it: `tournament audit verify RUN "
                   f"--expect-head HASH` detects a ledger cut or extended after it)")
        typer.echo(f"matrix:  {out.run_dir / 'performance_matrix.csv'}")
        if out.report:
            typer.echo(f"report:  {out.report}")
        typer.echo(f"cells: {out.n_cells}  units: {out.n_units}  seconds: {out.seconds:.1f}")
        _echo_checks(out)
        if mlflow or mlflow_uri:
            from tournament.export_mlflow import export_run

            _echo_export(export_run(out.run_dir, tracking_uri=mlflow_uri))
        if out.integrity_failures:
            typer.echo(f"INTEGRITY FAILED: {', '.join(out.integrity_failures)} (exit {EXIT_INTEGRITY}; the "
                       "failing checks are in audit.jsonl and bootstrap.json)", err=True)
            raise typer.Exit(code=EXIT_INTEGRITY)
    _guard(go)


def _echo_checks(out) -> None:
    """The check summary (counts by status, then the checks that failed or warned, by name) and the
    cells and windows that held no position."""
    if not out.checks:
        return
    st = out.checks["by_status"]
    typer.echo(f"checks:  {st.get('pass', 0)} passed, {st.get('warn', 0)} warnings, {st.get('fail', 0)} failed")
    for name, counts in out.checks["by_name"].items():
        if counts.get("fail") or counts.get("warn"):
            typer.echo(f"  {name:<24} fail {counts.get('fail', 0):>4}  warn {counts.get('warn', 0):>4}  "
                       f"pass {counts.get('pass', 0):>4}")
    if out.no_position_cells:
        names = ", ".join(out.no_position_cells[:10]) + (" ..." if len(out.no_position_cells) > 10 else "")
        typer.echo(f"no position: {len(out.no_position_cells)} cell(s) never held a position (no Sharpe is "
                   f"reported for them): {names}")
    if out.no_position_windows:
        names = ", ".join(out.no_position_windows[:10]) + (" ..." if len(out.no_position_windows) > 10 else "")
        typer.echo(f"no position: {len(out.no_position_windows)} window(s) with no winner (held in cash): {names}")


def _progress():
    """A rich progress bar on a terminal; silent otherwise (CI logs get one line per run)."""
    if not sys.stderr.isatty():
        return None
    from rich.progress import Progress

    state: dict = {}

    def cb(done: int, total: int) -> None:
        if "p" not in state:
            state["p"] = Progress(transient=True)
            state["p"].start()
            state["t"] = state["p"].add_task("units", total=total)
        state["p"].update(state["t"], completed=done)
        if done >= total:
            state["p"].stop()
    return cb


@data_app.command("synth")
def synth(out: Path = typer.Option(..., help="Folder to write (lakehouse/ + snapshots/)."),
          seed: int = typer.Option(7, help="Seed of the synthetic market."),
          calendar: str = typer.Option("crypto", help="crypto (7-day bars, BTCUSDT benchmark) or exchange "
                                                      "(weekday bars, INDEX benchmark: an equity-style market)."),
          no_signal: bool = typer.Option(False, "--no-signal",
                                         help="Martingale prices and snapshots that never read a price "
                                              "(a market with nothing to find, to measure the verdicts' size).")
          ) -> None:
    """Write the synthetic market as a lakehouse folder plus dated snapshots."""
    from market.exchange import to_exchange_calendar
    from market.loaders import write_lakehouse, write_snapshots
    from market.synthetic import SyntheticConfig, generate

    def go():
        if calendar not in ("crypto", "exchange"):
            raise ToolkitError(f"--calendar {calendar!r}: use crypto or exchange")
        m = generate(SyntheticConfig(seed=seed, no_signal=no_signal))
        if calendar == "exchange":
            m = to_exchange_calendar(m)
        write_lakehouse(m.data, out / "lakehouse")
        write_snapshots(m.snapshots, out / "snapshots")
        typer.echo(f"wrote {m.data.closes.shape[1]} symbols x {m.data.closes.shape[0]} bars to {out / 'lakehouse'}")
        typer.echo(f"wrote {len(m.snapshots.frames)} snapshots to {out / 'snapshots'} (benchmark {m.benchmark})"
                   + (" [no signal]" if no_signal else ""))
    _guard(go)


@audit_app.command("verify")
def verify(run_dir: Path = typer.Argument(..., help="Run folder holding audit.jsonl."),
           allow_incomplete: bool = typer.Option(False, "--allow-incomplete",
                                                 help="Accept a run without run_end (killed or still running); "
                                                      "prints INCOMPLETE."),
           expect_head: Optional[str] = typer.Option(None, "--expect-head",
                                                     help="Hash of the head published for this run: fail when "
                                                          "the ledger no longer ends on it.")) -> None:
    """Check the hash chain, side files and every file's digest; exit 1 naming the first bad seq or file.

    Prints the head (last seq and hash). Without --expect-head the chain proves internal consistency
    only: a ledger rewritten from some record to its end verifies. Pin the head (commit, sign or send
    it) and pass it here to detect a ledger cut, extended or rewritten after it was published."""
    from audit.verify import verify_ledger

    def go():
        rep = verify_ledger(run_dir, require_run_end=not allow_incomplete, expect_head=expect_head)
        if not rep.ok:
            where = f"seq {rep.first_bad_seq}" if rep.first_bad_seq is not None else "ledger"
            typer.echo(f"FAILED at {where}: {rep.message}", err=True)
            raise typer.Exit(code=1)
        state = "complete" if rep.complete else "INCOMPLETE (no run_end: killed or unfinished)"
        typer.echo(f"ok: {rep.n_records} records, chain and file digests verified, {state} ({run_dir})")
        typer.echo(f"head: {rep.head_seq} {rep.head_hash}" + (" (matches --expect-head)" if expect_head else ""))
        for w in rep.warnings:
            typer.echo(f"warning: {w}")
        if rep.unverified:
            shown = ", ".join(rep.unverified[:10]) + (" ..." if len(rep.unverified) > 10 else "")
            typer.echo(f"unverified (no digest in the ledger): {shown}")
    _guard(go)


@audit_app.command("recompute")
def recompute(run_dir: Path = typer.Argument(..., help="Run folder holding audit.jsonl."),
              allow_incomplete: bool = typer.Option(False, "--allow-incomplete",
                                                    help="Accept a run without run_end.")) -> None:
    """Recompute every cell's metrics from the ledger's daily returns alone and compare them with
    performance_matrix.csv and returns.parquet; exit 1 on any difference beyond tolerance."""
    from audit.raw_audit import compare_with_run
    from contracts.errors import LedgerError

    def go():
        try:
            res = compare_with_run(run_dir, require_run_end=not allow_incomplete)
        except LedgerError as exc:
            typer.echo(f"FAILED: {exc}", err=True)
            raise typer.Exit(code=1) from None
        for cid, m in sorted(res["metrics"].items()):
            typer.echo(f"{cid}  sharpe={m['sharpe']:.4f}  max_dd={m['max_drawdown']:.4f}  cagr={m['cagr']:.4f}")
        n = res["n_cells"]
        if res["ok"]:
            typer.echo(f"ok: {n} cells recomputed from the ledger match performance_matrix.csv "
                       "(sharpe, max_drawdown, cagr, annual_volatility) and returns.parquet")
            return
        typer.echo(f"MISMATCH: {len(res['differences'])} difference(s) between the ledger's returns and the "
                   "run's files:", err=True)
        typer.echo(f"  {'file':<22} {'cell':<13} {'metric':<18} {'file value':>14} {'ledger':>14}  issue", err=True)
        for d in res["differences"][:30]:
            fv = f"{d['matrix']:.10g}" if d.get("matrix") is not None else ""
            lv = f"{d['ledger']:.10g}" if d.get("ledger") is not None else ""
            typer.echo(f"  {d['file']:<22} {str(d['cell_id']):<13} {str(d['metric']):<18} {fv:>14} {lv:>14}  "
                       f"{d.get('issue', '')}", err=True)
        raise typer.Exit(code=1)
    _guard(go)


@audit_app.command("replay")
def replay(run_dir: Path = typer.Argument(..., help="Run folder to re-execute."),
           data: Optional[Path] = typer.Option(None, help="The run's data (default: the paths in its config)."),
           candidates: Optional[Path] = typer.Option(None, help="The run's candidate snapshots."),
           out: Optional[Path] = typer.Option(None, help="Where the replay's run folder goes "
                                                         "(default: beside RUN, RUN-replay-<time>/)."),
           tolerance: float = typer.Option(0.0, help="Absolute tolerance on floats (across library versions)."),
           executor: Optional[str] = typer.Option(None, help="serial, process or dask (never changes results)."),
           workers: Optional[int] = typer.Option(None, help="Worker processes.")) -> None:
    """Re-execute a run from its folder and compare: "replayed: identical" (exit 0) or the first
    difference by file, cell, date and field (exit 1). Other data is refused (exit 2)."""
    from tournament.replay import replay_run

    def go():
        ov = {k: v for k, v in (("executor", executor), ("workers", workers)) if v is not None}
        rep = replay_run(run_dir, data=str(data) if data else None, candidates=str(candidates) if candidates else None,
                         out_dir=out, tolerance=tolerance, overrides=ov)
        for w in rep.warnings:
            typer.echo(f"warning: {w}")
        if rep.tolerance:
            typer.echo(f"tolerance: floats compared to {rep.tolerance:g} (absolute)")
        typer.echo(f"replay:  {rep.replay_dir}  ({rep.seconds:.1f} s)")
        if rep.identical:
            typer.echo("replayed: identical (selections, weights, returns, positions, exposure, cells, matrix, "
                       "bootstrap.json and every decision record)")
            return
        typer.echo(f"replayed: DIFFERENT; first difference: {rep.first.line()}", err=True)
        typer.echo(f"  {'file':<48} {'differences':>11} {'largest abs diff':>17}", err=True)
        for f in sorted(set(rep.n_differences) | set(rep.largest)):
            typer.echo(f"  {f:<48} {rep.n_differences.get(f, 0):>11} {rep.largest.get(f, 0.0):>17.3g}", err=True)
        raise typer.Exit(code=1)
    _guard(go)


def _echo_export(res) -> None:
    state = "unchanged (already exported, same ledger head and files)" if res.skipped else (
        f"exported ({res.n_metric_values} metric values, {res.n_artifacts} artifact files"
        + (f"; replaced {res.n_replaced} earlier runs of this run id" if res.n_replaced else "") + ")")
    typer.echo(f"mlflow:  {res.tracking_uri}  experiment {res.experiment_name!r} (id {res.experiment_id})")
    typer.echo(f"mlflow:  parent run {res.parent_run_id}, {res.n_children} child runs for {res.n_matrix_rows} "
               f"matrix rows, {state}, {'verified' if res.verified else 'UNVERIFIED (--force)'}, "
               f"{res.seconds:.1f} s")


@export_app.command("mlflow")
def export_mlflow(run_dir: Path = typer.Argument(..., help="Run folder to export."),
                  tracking_uri: Optional[str] = typer.Option(
                      None, "--tracking-uri", help="MLflow tracking URI (default: sqlite:///<runs folder>/"
                                                   "mlflow/mlflow.db, the runs folder being RUN's parent)."),
                  experiment: Optional[str] = typer.Option(None, help="Experiment name (default: wfaudit)."),
                  force: bool = typer.Option(False, "--force", help="Export a run that fails `audit verify`, "
                                                                     "tagged wfaudit.verified=false.")) -> None:
    """One parent MLflow run for the tournament and one child run per performance-matrix row, read from
    the run folder alone; exporting the same run again does not duplicate it. Exit 2 when the run
    fails `audit verify` (unless --force) or MLflow is not installed (pip install -e ".[mlflow]")."""
    from tournament.export_mlflow import export_run

    def go():
        _echo_export(export_run(run_dir, tracking_uri=tracking_uri, experiment=experiment, force=force))
    _guard(go)


@app.command()
def report(run_dir: Path = typer.Argument(..., help="Run folder to render.")) -> None:
    """Render (again) the HTML report of a run folder; reads only that folder."""
    from reports import render_report

    def go():
        typer.echo(f"report: {render_report(run_dir)}")
    _guard(go)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover - `python -m tournament.cli ...`
    main()
