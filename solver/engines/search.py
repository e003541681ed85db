"""The search phase of a dispatch: ruin-and-recreate on the greedy plan, then OR-Tools.

:func:`search_plan` is what runs after the greedy insertion when the budget leaves time to
search, in a solver worker (the service) or in the calling process (offline runs):

1. **Ruin and recreate** (:func:`solver.engines.improve.improve_visits`) for
   ``params.ruin_recreate_share`` of the time (all of it when OR-Tools is not to run): route
   elimination when riders have a fixed cost, then simulated annealing. Its visits become a plan
   through the greedy engine (:func:`solver.engines.greedy.solve_greedy` with ``initial=``), which
   re-times every route and re-inserts any order the search left out, so the plan obeys the
   same rules as the greedy one.
2. **OR-Tools** (:func:`solver.engines.ortools.solve_ortools`), warm-started from that plan,
   for the rest of the time, if ``ortools`` is set and enough time is left for its model.

The plan with the lower objective wins (the later engine on ties). ``stats.phase_s`` gets
``ruin_recreate`` (search and rebuild) and, when OR-Tools ran, its own phases.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence

from solver.engines.greedy import solve_greedy
from solver.engines.improve import improve_visits
from solver.engines.kernel import ensure_warm
from solver.engines.ortools import EngineError, estimate_overhead_s, solve_ortools
from solver.model import Problem
from solver.params import SolverParams
from solver.plan import Engine, Plan, Unassigned
from solver.routes import Visit

#: Seconds kept back, per order, for turning the search's visits into a plan (re-timing every
#: route with the greedy engine: measured 1.8 / 5.1 / 8.4 ms at 60 / 200 / 400 orders, medians,
#: so about 0.02 ms per order past the base; kept at 0.03).
_REBUILD_PER_ORDER_S = 3e-5
_REBUILD_BASE_S = 0.003


#: What a search task runs: OR-Tools alone from the initial plan (``"ortools"``), or
#: :func:`search_plan` with OR-Tools after ruin-and-recreate (``"search"``) or without it
#: (``"ruin_recreate"``).
TASKS = ("ortools", "search", "ruin_recreate")


def plan_visits(plan: Plan) -> dict[str, list[Visit]]:
    """A plan's visit sequences by rider id (to seed another engine or the next request)."""
    return {route.rider_id: [(s.order_id, s.kind) for s in route.stops] for route in plan.routes}


def estimate_rebuild_s(problem: Problem) -> float:
    """Seconds to keep back for building the plan from the search's visits."""
    return _REBUILD_BASE_S + _REBUILD_PER_ORDER_S * len(problem.orders)


def search_plan(
    problem: Problem,
    params: SolverParams,
    *,
    time_limit_s: float,
    initial: Mapping[str, Sequence[Visit]],
    reasons: Mapping[str, Unassigned] | None = None,
    ortools: bool = True,
    seed: int = 0,
) -> Plan:
    """Improve a feasible plan's visits within ``time_limit_s`` of wall time.

    Parameters
    ----------
    problem, params
        The problem and the objective.
    time_limit_s
        Wall-clock limit (s) of the whole call, building the final plan included.
    initial
        Visit sequences by rider id of a feasible plan (the greedy plan's).
    reasons
        Unassigned reasons by order id, passed to OR-Tools for the orders it leaves out.
    ortools
        Whether OR-Tools may run after ruin-and-recreate (the caller's size rule). It runs if
        its share of the time, ``1 - params.ruin_recreate_share``, covers its model overhead
        and ``params.min_search_s``; otherwise ruin-and-recreate gets all the time.
    seed
        Seed of the ruin-and-recreate's random choices.

    Returns
    -------
    Plan
        Engine ``RUIN_RECREATE`` or ``ORTOOLS``; never worse by the objective than the plan
        ``initial`` describes, since the search keeps its best state and starts from it.
    """
    ensure_warm()  # the compiled kernel, once per process, before the clock starts
    started = time.perf_counter()
    deadline = started + time_limit_s
    # OR-Tools only if its share of the time covers its model and a minimal search; otherwise
    # ruin-and-recreate gets all of it (rather than leaving the end of the budget unused).
    ortools_s = time_limit_s * (1.0 - params.ruin_recreate_share)
    ortools = ortools and ortools_s >= params.min_search_s + estimate_overhead_s(problem)
    share = params.ruin_recreate_share if ortools else 1.0
    rebuild_s = estimate_rebuild_s(problem)
    rr_deadline = started + max(0.0, time_limit_s * share - rebuild_s)
    visits, _ = improve_visits(problem, params, initial, deadline=rr_deadline, seed=seed)
    rebuilt = solve_greedy(problem, params, initial=visits)
    phases = {"ruin_recreate": time.perf_counter() - started}
    best = dataclasses.replace(
        rebuilt, stats=dataclasses.replace(rebuilt.stats, engine=Engine.RUIN_RECREATE)
    )
    left = deadline - time.perf_counter()
    if ortools and left >= params.min_search_s + estimate_overhead_s(problem):
        try:
            found = solve_ortools(
                problem,
                params,
                time_limit_s=left,
                initial=plan_visits(best),
                reasons=reasons,
            )
        except EngineError:
            found = None  # no solution in time: the ruin-and-recreate plan stands
        if found is not None:
            phases.update(found.stats.phase_s)
            if found.stats.objective <= best.stats.objective:
                best = found
    return dataclasses.replace(best, stats=dataclasses.replace(best.stats, phase_s=phases))


def run_task(
    task: str,
    problem: Problem,
    params: SolverParams,
    *,
    time_limit_s: float,
    initial: Mapping[str, Sequence[Visit]] | None,
    reasons: Mapping[str, Unassigned] | None = None,
) -> Plan:
    """Run one of :data:`TASKS` (what a solver worker runs; dispatch runs it in-process).

    Without ``initial``, every task is OR-Tools alone (cold start).
    """
    if task not in TASKS:
        raise ValueError(f"task={task!r}: must be one of {TASKS}")
    if task == "ortools" or initial is None:
        return solve_ortools(
            problem, params, time_limit_s=time_limit_s, initial=initial, reasons=reasons
        )
    return search_plan(
        problem,
        params,
        time_limit_s=time_limit_s,
        initial=initial,
        reasons=reasons,
        ortools=task == "search",
    )
