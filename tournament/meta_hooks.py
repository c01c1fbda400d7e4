"""The meta-portfolio's steps inside ``tournament.postprocess.finish_run`` (issue 17), kept here so that
``finish_run`` only calls them (one line each, marked ``issue 17``)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from tournament.config import TournamentConfig
from tournament.meta import MetaOutcome, run_meta, sleeves_document, weights_frame
from contracts.schemas import check_frame
from tournament.rundir import write_json


def submit_sleeves(session, cfg: TournamentConfig):
    """Queue the walk-forward of every sleeve that does not depend on the run's returns
    (``meta_sleeves.walked_sleeves``) on the run's workers, one task per sleeve, queued behind the units
    (``tournament.run``): they run beside the units instead of after them in the driver (issue 23).
    ``None`` without a ``meta:`` block or such a sleeve; else an ``executors.Pending``."""
    from tournament.meta_sleeves import sleeve_task, walked_sleeves

    specs = walked_sleeves(cfg) if cfg.meta is not None else []
    return session.submit(sleeve_task, specs) if specs else None


def warm_imports() -> None:
    """Import vectorbt (``simulation.vbt_adapter``; a few seconds) for the meta cells' simulation in
    the driver: ``tournament.run`` calls it in a thread while the workers run the units."""
    import simulation.vbt_adapter  # noqa: F401


def meta_after_simulation(run_dir: Path, cfg: TournamentConfig, market, returns: pd.DataFrame, P: int,
                          record_file, walked=None) -> tuple[MetaOutcome, pd.DataFrame]:
    """Run the meta layer on the run's simulated returns; write ``meta/weights.parquet`` and
    ``meta/sleeves.json`` (digested at once); return it and ``returns`` with the added cells' rows.
    ``walked``: the ``submit_sleeves`` tasks (or None: every sleeve is walked here)."""
    from market.ratings import DerivedCache
    from tournament.run import cache_dir

    done = {s.spec.name: s for s in walked.result()} if walked is not None else None
    out = run_meta(cfg, market, returns, P, derived_cache=DerivedCache(cache_dir() / "derived"), walked=done)
    (run_dir / "meta").mkdir(exist_ok=True)
    wpath = run_dir / "meta" / "weights.parquet"
    check_frame(weights_frame(out), "meta/weights.parquet").to_parquet(wpath, index=False)
    record_file(wpath)
    sw = [s.weights for s in out.sleeves if not s.reused and len(s.weights)]
    spath = run_dir / "meta" / "sleeve_weights.parquet"  # walked-forward sleeves' decisions
    check_frame(pd.concat(sw, ignore_index=True) if sw else pd.DataFrame(
        {c: pd.Series(dtype=t) for c, t in (("cell_id", "string"), ("window", "int64"), ("atom_id", "string"),
                                             ("symbol", "string"), ("direction", "string"),
                                             ("weight", "float64"))}), "weights.parquet").to_parquet(spath, index=False)
    record_file(spath)
    path = run_dir / "meta" / "sleeves.json"
    write_json(path, sleeves_document(out, cfg))
    record_file(path)
    add = out.returns.astype({c: t for c, t in returns.dtypes.items() if c in out.returns.columns and c != "cell_id"})
    if isinstance(returns["cell_id"].dtype, pd.CategoricalDtype):  # keep the simulators' categorical ids
        ids = returns["cell_id"].cat.add_categories(sorted(set(add["cell_id"].astype(str))))
        returns = returns.assign(cell_id=ids)
        add = add.assign(cell_id=pd.Categorical(add["cell_id"].astype(str), dtype=ids.dtype))
    return out, pd.concat([returns, add], ignore_index=True)


def meta_checks_for(out: MetaOutcome, cfg: TournamentConfig, bands: dict, P: int) -> list:
    from tournament.meta_stats import meta_checks
    from tournament.postprocess import sim_conventions

    return meta_checks(out, sim_conventions(P), sim_conventions, cfg, bands)
