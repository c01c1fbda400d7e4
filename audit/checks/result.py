"""Structured result of an audit check, ready to be a ``check`` ledger record, and the run summary."""
from __future__ import annotations

from enum import Enum
from typing import Any, Iterable, Optional

from pydantic import BaseModel, ConfigDict, Field

from audit.canonical import normalize


class CheckStatus(str, Enum):
    """``pass``: the checked property holds; ``fail``: it is broken; ``warn``: it holds but needs a
    look (e.g. a quarantined window, a simulator metric that is NaN on a degenerate series)."""

    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"


class CheckResult(BaseModel):
    """One check on one cell and/or window. ``details`` holds JSON-ready values only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    status: CheckStatus
    cell_id: Optional[str] = None
    window: Optional[int] = None
    details: dict[str, Any] = Field(default_factory=dict)

    def to_ledger_data(self) -> dict[str, Any]:
        """The ``data`` of a ``check`` ledger record (details normalised; NaN stays for the writer
        to null and flag)."""
        return {"name": self.name, "status": self.status.value, "cell_id": self.cell_id,
                "window": self.window, "details": self.details}


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    """Details made JSON-ready (numpy scalars, timestamps, enums) without dropping non-finite values."""
    return normalize(details, "", [])


def make_result(name: str, status: CheckStatus, details: dict[str, Any], *,
                cell_id: str | None = None, window: int | None = None) -> CheckResult:
    """Build a ``CheckResult`` with JSON-ready details (non-finite floats become None)."""
    return CheckResult(name=name, status=status, cell_id=cell_id,
                       window=None if window is None else int(window), details=_jsonable(details))


def summarize_checks(results: Iterable[CheckResult]) -> dict[str, Any]:
    """Per-run summary: counts by status and by check name, the list of failures and warnings,
    and ``ok`` (no failure)."""
    results = list(results)
    by_status = {s.value: 0 for s in CheckStatus}
    by_name: dict[str, dict[str, int]] = {}
    failures, warnings = [], []
    for r in results:
        by_status[r.status.value] += 1
        by_name.setdefault(r.name, {s.value: 0 for s in CheckStatus})[r.status.value] += 1
        ref = {"name": r.name, "cell_id": r.cell_id, "window": r.window}
        if r.status is CheckStatus.FAIL:
            failures.append(ref)
        elif r.status is CheckStatus.WARN:
            warnings.append(ref)
    return {"ok": not failures, "n_checks": len(results), "by_status": by_status,
            "by_name": dict(sorted(by_name.items())), "failures": failures, "warnings": warnings}
