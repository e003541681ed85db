"""Tests of the solver worker pool: solves in processes, concurrency, timeouts, crashes."""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from solver.check import assert_valid_plan
from solver.engines.greedy import solve_greedy
from solver.engines.search import plan_visits
from solver.params import SolverParams
from solver.plan import Engine
from solver.runtime.dispatch import ZoneJob, solve_zones
from solver.runtime.partition import Zone
from solver.runtime.workers import (
    PoolBusyError,
    PoolClosedError,
    SolverPool,
    WorkerCrashed,
    WorkerTimeout,
)
from solver.spec import ProblemSpec
from tests.solver.conftest import random_problem
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def pool() -> Iterator[SolverPool]:
    with SolverPool(2) as shared:
        yield shared


def boot_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "solver-pool-boot"]


def test_a_problem_round_trips_through_pickle() -> None:
    """What a worker receives: the problem pickled as its constructor's arguments."""
    problem = random_problem(4, n_orders=6, n_profiles=2, closed_share=0.5)
    again = pickle.loads(pickle.dumps(problem))
    assert again.orders == problem.orders and again.riders == problem.riders
    assert np.array_equal(again.time_s, problem.time_s)
    assert np.array_equal(again.distance_m, problem.distance_m)


def test_pool_answers_with_valid_plans(pool: SolverPool, params: SolverParams) -> None:
    problem = random_problem(7, n_orders=10, n_riders=3, extras=True)
    plan = pool.solve(problem, params, time_limit_s=0.1, hard_timeout_s=30.0)
    assert_valid_plan(problem, plan, params)
    assert plan.stats.engine is Engine.ORTOOLS
    assert pool.queue_depth == 0


@pytest.mark.parametrize(
    ("task", "engines"),
    [
        ("ruin_recreate", {Engine.RUIN_RECREATE}),
        ("search", {Engine.RUIN_RECREATE, Engine.ORTOOLS}),
    ],
)
def test_pool_runs_the_search_tasks(
    task: str, engines: set[Engine], pool: SolverPool, params: SolverParams
) -> None:
    problem = random_problem(8, n_orders=12, n_riders=3, extras=True, pinned_share=0.3)
    greedy = solve_greedy(problem, params)
    plan = pool.solve(
        problem,
        params.replace(ruin_recreate_share=0.5),
        time_limit_s=0.2,
        initial=plan_visits(greedy),
        hard_timeout_s=30.0,
        task=task,
    )
    assert_valid_plan(problem, plan, params)
    assert plan.stats.engine in engines
    assert plan.stats.objective <= greedy.stats.objective + 1e-6
    assert ("model_build" in plan.stats.phase_s) == (task == "search")


def test_a_job_s_interim_results_come_back_when_it_overruns(params: SolverParams) -> None:
    """The pool runs any picklable callable; what it sent before it was killed is kept."""
    problem = random_problem(13, n_orders=12, n_riders=3)
    spec = ProblemSpec.of_problem(problem)
    zones = ((0, Zone(tuple(range(12)), tuple(range(3)), (0.0, 0.0))),)
    job = ZoneJob(spec, zones, params, None, repair=True)
    with SolverPool(1, warm=False) as solo:
        answered = solo.run(solve_zones, job, time_limit_s=0.2)
        assert [zp.zone for zp in answered] == [0]
        assert_valid_plan(problem, answered[0].plan, params)
        assert {"greedy", "matrix"} <= set(answered[0].plan.stats.phase_s)
        with pytest.raises(WorkerTimeout) as killed:  # searches for 5 s, killed after 1 s
            solo.run(solve_zones, job, time_limit_s=5.0, hard_timeout_s=1.0)
    fallback = killed.value.interims[0].plan  # the greedy plan, sent first
    assert fallback.stats.engine is Engine.GREEDY
    assert_valid_plan(problem, fallback, params)
    assert killed.value.fallback is killed.value.interims[-1]


def test_pool_refuses_an_unknown_task(pool: SolverPool, params: SolverParams) -> None:
    with pytest.raises(ValueError, match="task='lp'"):
        pool.solve(random_problem(9), params, time_limit_s=0.1, task="lp")


def test_callers_get_workers_in_arrival_order_or_give_up_at_their_wait_timeout(
    params: SolverParams,
) -> None:
    problem = random_problem(10, n_orders=8, n_riders=2)
    order: list[str] = []

    def call(name: str, wait_s: float | None) -> None:
        try:
            solo.solve(
                problem, params, time_limit_s=0.3, hard_timeout_s=30.0, wait_timeout_s=wait_s
            )
            order.append(name)
        except PoolBusyError:
            order.append(f"{name} gave up")

    with SolverPool(1) as solo:
        threads = [threading.Thread(target=call, args=("first", None))]
        threads[0].start()
        time.sleep(0.1)  # the worker is busy with "first" for about 0.3 s
        for name, wait_s in (("second", None), ("impatient", 0.1), ("third", None)):
            threads.append(threading.Thread(target=call, args=(name, wait_s)))
            threads[-1].start()
            time.sleep(0.02)
        for thread in threads:
            thread.join(timeout=30)
    assert order == ["impatient gave up", "first", "second", "third"]


def test_many_threads_share_the_workers(pool: SolverPool, params: SolverParams) -> None:
    problems = [random_problem(20 + k, n_orders=10, n_riders=3) for k in range(4)]
    plans: dict[int, object] = {}
    depths: list[int] = []
    done = threading.Event()

    seeds = [plan_visits(solve_greedy(p, params)) for p in problems]

    def call(k: int) -> None:
        # Time in line comes off the limit, so the last callers may get none: ruin-and-recreate
        # from a greedy plan answers even then (OR-Tools might find no first solution).
        plans[k] = pool.solve(
            problems[k],
            params,
            time_limit_s=0.3,
            hard_timeout_s=30.0,
            initial=seeds[k],
            task="ruin_recreate",
        )

    def watch() -> None:
        while not done.is_set():
            depths.append(pool.queue_depth)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    callers = [threading.Thread(target=call, args=(k,)) for k in range(4)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    done.set()
    watcher.join()
    assert sorted(plans) == [0, 1, 2, 3]
    for k, plan in plans.items():
        assert_valid_plan(problems[k], plan, params)  # type: ignore[arg-type]
    assert pool.queued_total >= 2  # four callers, two workers: at least two had to queue
    assert max(depths) <= 4
    assert pool.queue_depth == 0 and pool.restarts == 0


def test_overrunning_worker_is_killed_and_replaced(params: SolverParams) -> None:
    problem = random_problem(9, n_orders=12, n_riders=3)
    with SolverPool(1) as solo:
        first_pid = solo.worker_pids
        with pytest.raises(WorkerTimeout):
            solo.solve(problem, params, time_limit_s=60.0, hard_timeout_s=0.3)
        assert solo.restarts == 1
        assert solo.wait_idle(30.0)  # the replacement has booted
        plan = solo.solve(problem, params, time_limit_s=0.1, hard_timeout_s=30.0)
        assert_valid_plan(problem, plan, params)
        assert solo.worker_pids != first_pid
    wait_until(lambda: not boot_threads())


def test_crashed_worker_is_reported_and_replaced(params: SolverParams) -> None:
    problem = random_problem(10, n_orders=12, n_riders=3)
    with SolverPool(1) as solo:
        (pid,) = solo.worker_pids
        killer = threading.Timer(0.2, os.kill, args=(pid, signal.SIGKILL))
        killer.start()
        with pytest.raises(WorkerCrashed):
            solo.solve(problem, params, time_limit_s=10.0, hard_timeout_s=30.0)
        killer.join()
        assert solo.restarts == 1
        # the replacement's boot would otherwise eat the 0.1 s limit on a loaded machine
        assert solo.wait_idle(30.0)
        plan = solo.solve(problem, params, time_limit_s=0.1, hard_timeout_s=30.0)
        assert_valid_plan(problem, plan, params)
        assert pid not in solo.worker_pids


def test_idle_worker_that_dies_is_replaced_before_any_caller_needs_it(
    params: SolverParams,
) -> None:
    problem = random_problem(12, n_orders=6, n_riders=2)
    with SolverPool(1) as solo:
        (pid,) = solo.worker_pids
        os.kill(pid, signal.SIGKILL)  # idle: no solve is running
        wait_until(lambda: solo.restarts == 1, timeout_s=10.0)
        assert solo.wait_idle(60.0)
        assert pid not in solo.worker_pids
        assert solo.idle_workers == 1
        plan = solo.solve(problem, params, time_limit_s=0.1, hard_timeout_s=30.0)
        assert_valid_plan(problem, plan, params)
        assert solo.restarts == 1


def test_pool_refuses_work_unless_started(params: SolverParams) -> None:
    problem = random_problem(11, n_orders=3, n_riders=2)
    idle = SolverPool(1, warm=False)
    with pytest.raises(PoolClosedError):
        idle.solve(problem, params, time_limit_s=0.1)
    idle.start()
    (pid,) = idle.worker_pids
    idle.close()
    idle.close()  # idempotent
    assert idle.worker_pids == []
    with pytest.raises(PoolClosedError):
        idle.solve(problem, params, time_limit_s=0.1)
    wait_until(lambda: not _alive(pid), timeout_s=5.0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers; it is reaped by multiprocessing on join.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_workers_run_at_a_lower_priority_and_still_solve(params: SolverParams) -> None:
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    with SolverPool(1, warm=False, nice=5) as niced:
        (pid,) = niced.worker_pids
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, ours + 5)
        problem = random_problem(12, n_orders=4, n_riders=2)
        plan = niced.solve(problem, params, time_limit_s=0.1, hard_timeout_s=30.0)
        assert_valid_plan(problem, plan, params)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        SolverPool(0)
    with pytest.raises(ValueError):
        SolverPool(1, context="fork")
    with pytest.raises(ValueError, match="nice"):
        SolverPool(1, nice=20)
