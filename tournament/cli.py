"""The ``tournament`` command line. Errors print one readable line (``--debug`` shows the traceback)."""
from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Optional

import typer

from contracts.errors import ToolkitError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Walk-forward backtesting and forensic audit toolkit.")
data_app = typer.Typer(no_args_is_help=True, help="Data tools: write the synthetic market.")
audit_app = typer.Typer(no_args_is_help=True, help="Audit tools: verify a run's ledger, recompute its metrics.")
app.add_typer(data_app, name="data")
app.add_typer(audit_app, name="audit")

_STATE = {"debug": False}


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")) -> None:
    """Walk-forward backtesting and forensic audit toolkit."""
    _STATE["debug"] = debug


def _fail(exc: BaseException) -> None:
    if _STATE["debug"]:
        traceback.print_exception(exc)
    notes = "; ".join(getattr(exc, "__notes__", []) or [])
    msg = f"error: {exc}" + (f" ({notes})" if notes else "")
    typer.echo(msg, err=True)
    raise typer.Exit(code=2)


def _guard(fn):
    try:
        return fn()
    except ToolkitError as exc:
        _fail(exc)
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        _fail(exc)


@app.command()
def run(
    preset: Optional[str] = typer.Option(None, help="quick (default, about a minute) or full."),
    config: Optional[Path] = typer.Option(None, help="YAML config file (unknown keys are errors)."),
    data: Optional[Path] = typer.Option(None, help="Lakehouse folder or wide close file (default: synthetic)."),
    candidates: Optional[Path] = typer.Option(None, help="Snapshot folder (YYYY-MM-DD.json) or one undated export."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where run folders are created."),
    resume: Optional[Path] = typer.Option(None, help="Resume this run folder after a crash."),
    executor: Optional[str] = typer.Option(None, help="serial, process or dask."),
    workers: Optional[int] = typer.Option(None, help="Worker processes (process/dask)."),
    scheduler: Optional[str] = typer.Option(None, help="Dask scheduler address (default: a LocalCluster)."),
    seed: Optional[int] = typer.Option(None, help="Base seed."),
    calendar: Optional[str] = typer.Option(None, help="crypto (365) or exchange (252)."),
    benchmark: Optional[str] = typer.Option(None, help="Benchmark symbol for beta."),
    report: bool = typer.Option(True, "--report/--no-report", help="Render the HTML report."),
) -> None:
    """Run a tournament (selection x allocation x simulation, audited) and print where its outputs are."""
    from tournament.config import load_config
    from tournament.run import run_tournament

    def go():
        overrides: dict = {"report": report}
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
        for k, v in (("executor", executor), ("workers", workers), ("scheduler", scheduler), ("seed", seed)):
            if v is not None:
                overrides[k] = v
        cfg = load_config(config, preset, overrides)
        out = run_tournament(cfg, runs_dir, resume=resume, progress=_progress())
        typer.echo(f"run:     {out.run_dir}")
        typer.echo(f"ledger:  {out.ledger}")
        typer.echo(f"matrix:  {out.run_dir / 'performance_matrix.csv'}")
        if out.report:
            typer.echo(f"report:  {out.report}")
        typer.echo(f"cells: {out.n_cells}  units: {out.n_units}  seconds: {out.seconds:.1f}")
    _guard(go)


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
          no_signal: bool = typer.Option(False, "--no-signal",
                                         help="Martingale prices and snapshots that never read a price "
                                              "(a market with nothing to find, to measure the verdicts' size).")
          ) -> None:
    """Write the synthetic market as a lakehouse folder plus dated snapshots."""
    from market.loaders import write_lakehouse, write_snapshots
    from market.synthetic import SyntheticConfig, generate

    def go():
        m = generate(SyntheticConfig(seed=seed, no_signal=no_signal))
        write_lakehouse(m.data, out / "lakehouse")
        write_snapshots(m.snapshots, out / "snapshots")
        typer.echo(f"wrote {m.data.closes.shape[1]} symbols x {m.data.closes.shape[0]} bars to {out / 'lakehouse'}")
        typer.echo(f"wrote {len(m.snapshots.frames)} snapshots to {out / 'snapshots'} (benchmark {m.benchmark})"
                   + (" [no signal]" if no_signal else ""))
    _guard(go)


@audit_app.command("verify")
def verify(run_dir: Path = typer.Argument(..., help="Run folder holding audit.jsonl.")) -> None:
    """Check the ledger's hash chain, side files and artifact digests; exit 1 naming the first bad seq."""
    from audit.verify import verify_ledger

    def go():
        rep = verify_ledger(run_dir)
        if rep.ok:
            typer.echo(f"ok: {rep.n_records} records, chain and artifacts verified ({run_dir})")
        else:
            typer.echo(f"FAILED at seq {rep.first_bad_seq}: {rep.message}", err=True)
            raise typer.Exit(code=1)
    _guard(go)


@audit_app.command("recompute")
def recompute(run_dir: Path = typer.Argument(..., help="Run folder holding audit.jsonl.")) -> None:
    """Recompute every cell's metrics from the ledger's daily returns alone (the raw return audit)."""
    from audit.raw_audit import recompute_from_ledger

    def go():
        res = recompute_from_ledger(run_dir)
        for cid, m in sorted(res.items()):
            typer.echo(f"{cid}  sharpe={m['sharpe']:.4f}  max_dd={m['max_drawdown']:.4f}  cagr={m['cagr']:.4f}")
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
