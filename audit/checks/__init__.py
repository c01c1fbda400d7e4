"""Audit checks; each returns ``CheckResult`` (name, status, cell_id/window, details) whose
``to_ledger_data()`` is the ``data`` of a ``check`` ledger record; ``summarize_checks`` gives the
per-run summary."""
from audit.checks.bankruptcy import check_bankruptcy
from audit.checks.directional import check_directional
from audit.checks.funnel import check_funnel
from audit.checks.mismatch import MismatchTolerance, SimConventions, check_metric_mismatch
from audit.checks.quarantine import QuarantineConfig, metrics_with_and_without, quarantine_windows
from audit.checks.result import CheckResult, CheckStatus, make_result, summarize_checks
from audit.checks.vol_bands import DRIFT_THRESHOLD, VOL_BANDS, band_distance, check_volatility_band

__all__ = [
    "CheckResult", "CheckStatus", "make_result", "summarize_checks",
    "check_metric_mismatch", "SimConventions", "MismatchTolerance",
    "check_volatility_band", "VOL_BANDS", "DRIFT_THRESHOLD", "band_distance",
    "check_directional", "check_funnel",
    "quarantine_windows", "metrics_with_and_without", "QuarantineConfig",
    "check_bankruptcy",
]
