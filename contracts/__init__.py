"""Shared types of the toolkit. This package imports nothing of ours (DESIGN section 2).

Every pillar talks to the others through these types and plain pandas/numpy objects.
"""
from contracts.enums import (
    AssetType, Backend, Direction, ExecutorKind, Logic, Profile, RecordType, SimulatorKind,
    SpecVersion,
)
from contracts.errors import (
    ConfigError, DataError, LedgerError, SolverError, ToolkitError,
)
from contracts.window import Window
from contracts.candidate import CANDIDATE_COLUMNS, Candidate
from contracts.atom import StrategyAtom
from contracts.allocation import Allocation, AllocationRequest
from contracts.cell import CellKey, SettingKey
from contracts.selection import SelectionResult, RejectedCandidate, Funnel
from contracts.ledger import LedgerRecord, GENESIS_HASH
from contracts.schemas import RUN_SCHEMAS, SCHEMA_VERSION, ColumnSpec, check_frame

__all__ = [
    "AssetType", "Backend", "Direction", "ExecutorKind", "Logic", "Profile", "RecordType",
    "SimulatorKind", "SpecVersion", "ConfigError", "DataError", "LedgerError", "SolverError",
    "ToolkitError", "Window", "CANDIDATE_COLUMNS", "Candidate", "StrategyAtom", "Allocation",
    "AllocationRequest", "CellKey", "SettingKey", "SelectionResult", "RejectedCandidate", "Funnel",
    "LedgerRecord", "GENESIS_HASH", "RUN_SCHEMAS", "SCHEMA_VERSION", "ColumnSpec", "check_frame",
]
