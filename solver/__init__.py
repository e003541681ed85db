"""Meal pickup-and-delivery routing over travel matrices (no gRPC, no osmnx)."""

from solver.model import Order, OrderState, Problem, ProblemError, Rider
from solver.params import ParamsError, SolverParams, load_params
from solver.plan import (
    Engine,
    Plan,
    Route,
    SolveStats,
    Stop,
    StopKind,
    Unassigned,
    UnassignedReason,
)

__all__ = [
    "Engine",
    "Order",
    "OrderState",
    "ParamsError",
    "Plan",
    "Problem",
    "ProblemError",
    "Rider",
    "Route",
    "SolveStats",
    "SolverParams",
    "Stop",
    "StopKind",
    "Unassigned",
    "UnassignedReason",
    "load_params",
]
