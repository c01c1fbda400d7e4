"""The toolkit's small exception hierarchy.

Every error names what is at fault (file, symbol, date, field). Context is added with
``BaseException.add_note`` as an error travels up; the CLI prints the message and notes on one
line and shows the traceback only with ``--debug``.
"""
from __future__ import annotations


class ToolkitError(Exception):
    """Base class of every error the toolkit raises on purpose."""


class DataError(ToolkitError):
    """Bad input data: a file, symbol, date or field that breaks a data contract."""


class ConfigError(ToolkitError):
    """Invalid configuration: unknown key, bad value, inconsistent settings."""


class SolverError(ToolkitError):
    """An optimiser failed in a way that no documented fallback covers."""


class LedgerError(ToolkitError):
    """The run ledger is broken: tampering, a bad chain, a missing artifact."""
