"""Meal pickup-and-delivery routing over travel matrices (no gRPC, no osmnx), in three layers
read from the folder: the vocabulary (``model``, ``spec``, ``params``, ``plan``, ``routes``,
``check``), the engines (:mod:`solver.engines`) and the runtime that owns a request's path
(:mod:`solver.runtime`). Lower layers never import higher ones."""

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
