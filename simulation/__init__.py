"""Simulation: window schedule, the vectorbt and reference simulators, costs, liquidation floor, TWR.

Public API (the tournament calls exactly this)::

    from simulation import (make_windows, SimulationConfig, CellPlan, WindowPlan, simulate,
                            SimulationResult, compare_simulators)

Only ``simulation.vbt_adapter`` imports vectorbt (lazily, when the vectorbt simulator runs).
"""
from simulation.config import CellPlan, SimulationConfig, WindowPlan
from simulation.engine import simulate
from simulation.results import SimulationResult, compare_simulators
from simulation.windows import make_windows

__all__ = ["make_windows", "SimulationConfig", "CellPlan", "WindowPlan", "simulate", "SimulationResult",
           "compare_simulators"]
