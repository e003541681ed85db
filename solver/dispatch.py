"""The dispatch entry point: greedy first, then search within the budget, the better plan wins.

:func:`solve` is what the service calls for every dispatch request:

1. The greedy insertion (:func:`solver.greedy.solve_greedy`) answers first, seeded with the
   previous plan's visit sequences when one is given (re-optimisation keeps routes stable).
2. If at least ``params.min_search_s`` (plus the search's overhead) of the budget is left, the
   search (:func:`solver.search.search_plan`) improves the greedy plan for the rest of the
   budget: ruin-and-recreate for ``params.ruin_recreate_share`` of it, then OR-Tools
   (:func:`solver.ortools_engine.solve_ortools`) warm-started from the result, when there are
   at most ``params.ortools_max_orders`` open orders. With ``ruin_recreate_share = 0`` OR-Tools
   alone runs from the greedy plan.
3. The plan with the lower objective is returned. ``stats.phase_s`` holds ``greedy``, the
   search's phases (``ruin_recreate``; OR-Tools' ``model_build``, ``first_solution``,
   ``search``, ``validate``), ``engine`` (the search's wall time as seen by the caller,
   inter-process traffic included) and ``total``. ``stats.shed_reason`` says why the greedy
   plan was returned without a search (skipped, timed out, crashed, failed); it is empty when
   the search ran.

Where it runs: with a :class:`~solver.workers.SolverPool` (the service's way), the whole of it,
greedy included, runs in a worker process (:func:`solve_in_process` there): the caller's GIL
stays free for other requests, the worker sends its greedy plan back as soon as it has it, and a
worker that overruns ``budget + params.kill_margin_s`` is killed and that greedy plan returned
(computed here only if the worker never sent it). Without a pool, **in the calling process**:
meant for offline runs, benchmarks and tests; it holds the GIL for the whole search and cannot
be pre-empted, so the budget is kept by the engines' own time limits only (a one-off worker
process per call would cost more than a typical budget to start).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

from solver.budget import Budget
from solver.greedy import solve_greedy
from solver.kernel import ensure_warm
from solver.model import OrderState, Problem
from solver.ortools_engine import EngineError, estimate_overhead_s
from solver.params import SolverParams
from solver.plan import Plan
from solver.routes import Visit
from solver.search import estimate_rebuild_s, plan_visits, run_task
from solver.workers import (
    DISPATCH,
    PoolBusyError,
    SolverPool,
    WorkerCrashed,
    WorkerError,
    WorkerTimeout,
)

#: Seconds of the budget kept back for handing the engine's plan back in-process.
_INPROCESS_RESERVE_S = 0.003
#: Seconds kept back for the round trip to a worker (pickling the problem and the plan).
_POOL_RESERVE_S = 0.010
#: Seconds kept back from the kill deadline for assembling the answer after a kill.
_RETURN_RESERVE_S = 0.005
#: Seconds per order a greedy plan from scratch may take: how much of the budget a worker needs
#: besides the search. Measured with the compiled kernel (Northwestern meal batches, medians):
#: 3.0 ms at 60 orders, 22 ms at 200, 77 ms at 400 (0.19 ms per order); kept at 0.2 ms.
_GREEDY_PER_ORDER_S = 2e-4

__all__ = ["estimate_greedy_s", "plan_visits", "solve", "solve_in_process"]


def estimate_greedy_s(problem: Problem) -> float:
    """Seconds a greedy plan from scratch may take for ``problem`` (what a worker spends
    before it can search)."""
    return _GREEDY_PER_ORDER_S * len(problem.orders)


def _with_stats(plan: Plan, *, phase_s: dict[str, float], shed_reason: str) -> Plan:
    stats = dataclasses.replace(plan.stats, phase_s=phase_s, shed_reason=shed_reason)
    return dataclasses.replace(plan, stats=stats)


def _choose_task(params: SolverParams, open_orders: int) -> str:
    """The search task (:data:`solver.search.TASKS`) for this many open orders, or ``""``."""
    ortools_fits = open_orders <= params.ortools_max_orders
    if params.ruin_recreate_share <= 0.0:
        return "ortools" if ortools_fits else ""
    if params.ruin_recreate_share >= 1.0 or not ortools_fits:
        return "ruin_recreate"
    return "search"


def _open_orders(problem: Problem) -> int:
    return sum(1 for o in problem.orders if o.state is OrderState.OPEN)


def solve(
    problem: Problem,
    params: SolverParams | None = None,
    *,
    budget_s: float | None = None,
    previous: Plan | None = None,
    pool: SolverPool | None = None,
) -> Plan:
    """Answer a dispatch request within ``budget_s`` seconds of wall time.

    Parameters
    ----------
    problem
        The problem to solve.
    params
        Objective weights and budgets (default :class:`SolverParams`).
    budget_s
        Wall-clock budget (s); default ``params.default_budget_s``. With a pool, the answer
        comes back within ``budget_s + params.kill_margin_s``.
    previous
        The previous plan for (a version of) this problem, to start from.
    pool
        Worker pool to run the dispatch in. ``None``: it runs in this process (offline use).

    Returns
    -------
    Plan
        The greedy or the search's plan, whichever has the lower objective (the search's on
        ties), with ``greedy``, the search's phases, ``engine`` (pool only: the worker's wall
        time as seen here) and ``total`` in ``stats.phase_s``, and ``stats.shed_reason`` set
        when the search was skipped or failed.
    """
    ensure_warm()  # the compiled kernel, once per process, before the budget starts
    params = params or SolverParams()
    budget_s = params.default_budget_s if budget_s is None else budget_s
    initial = None if previous is None else plan_visits(previous)  # greedy sanitises it
    if pool is None or not problem.riders or not _open_orders(problem):
        return solve_in_process(problem, params, budget_s=budget_s, initial=initial)
    budget = Budget(budget_s)
    kill_margin = max(0.0, params.kill_margin_s - _RETURN_RESERVE_S)
    greedy_s = estimate_greedy_s(problem)
    plan: Plan | None = None
    fallback: Plan | None = None
    shed = ""
    with budget.phase("engine"):
        try:
            plan = pool.solve(
                problem,
                params,
                time_limit_s=budget.remaining() - _POOL_RESERVE_S,
                initial=initial,
                hard_timeout_s=budget.remaining() + kill_margin,
                task=DISPATCH,
                # a worker that frees up later leaves no search time: answer greedy here
                wait_timeout_s=budget.remaining() - params.min_search_s - greedy_s,
            )
        except WorkerTimeout as exc:
            shed, fallback = "worker overran budget; killed", exc.fallback
        except WorkerCrashed as exc:
            shed, fallback = f"worker crashed; restarted ({exc})", exc.fallback
        except PoolBusyError:
            shed = "no idle worker within budget"
        except WorkerError as exc:
            shed, fallback = f"search failed: {str(exc).splitlines()[0]}", exc.fallback
    if plan is None:
        if fallback is None:
            with budget.phase("greedy"):
                fallback = solve_greedy(problem, params, initial=initial, deadline=budget.deadline)
        plan = fallback
    else:
        shed = plan.stats.shed_reason  # the worker's own (e.g. no time left to search)
    phases = {**plan.stats.phase_s, **budget.phase_s, "total": budget.elapsed()}
    return _with_stats(plan, phase_s=phases, shed_reason=shed)


def solve_in_process(
    problem: Problem,
    params: SolverParams,
    *,
    budget_s: float,
    initial: Mapping[str, Sequence[Visit]] | None = None,
    on_greedy: Callable[[Plan], None] | None = None,
) -> Plan:
    """Greedy, then the search for what is left of ``budget_s``, in this process.

    What :func:`solve` runs without a pool, and what a pool's worker runs for it.
    ``initial``: the previous plan's visits to start from; ``on_greedy`` is called with the
    greedy plan as soon as it is built (a worker sends it back early, in case it is killed).
    """
    ensure_warm()
    budget = Budget(budget_s)
    with budget.phase("greedy"):
        greedy = solve_greedy(problem, params, initial=initial, deadline=budget.deadline)
    if on_greedy is not None:
        on_greedy(greedy)

    shed = ""
    engine_plan: Plan | None = None
    open_orders = _open_orders(problem)
    task = _choose_task(params, open_orders)
    overhead = estimate_overhead_s(problem) if task == "ortools" else estimate_rebuild_s(problem)
    left = budget.remaining()
    if not problem.orders or not problem.riders or not open_orders:
        pass  # nothing to improve
    elif not task:
        shed = (
            f"too many orders for OR-Tools ({open_orders} open > "
            f"ortools_max_orders {params.ortools_max_orders}) and ruin_recreate_share is 0"
        )
    elif left < params.min_search_s + overhead:
        shed = (
            f"budget too small for search ({left * 1000:.0f} ms left < min_search_s "
            f"{params.min_search_s * 1000:.0f} ms + overhead {overhead * 1000:.0f} ms)"
        )
    else:
        with budget.phase("engine"):
            try:
                engine_plan = run_task(
                    task,
                    problem,
                    params,
                    time_limit_s=budget.remaining() - _INPROCESS_RESERVE_S,
                    initial=plan_visits(greedy),
                    reasons={u.order_id: u for u in greedy.unassigned},
                )
            except EngineError as exc:
                shed = f"search failed: {str(exc).splitlines()[0]}"

    if engine_plan is not None and engine_plan.stats.objective <= greedy.stats.objective:
        best = engine_plan
    else:
        best = greedy
    phases = {"greedy": budget.phase_s["greedy"]}
    if engine_plan is not None:
        phases.update(engine_plan.stats.phase_s)
    if "engine" in budget.phase_s:
        phases["engine"] = budget.phase_s["engine"]
    phases["total"] = budget.elapsed()
    return _with_stats(best, phase_s=phases, shed_reason=shed)
