"""A pool of solver worker processes: one job per process at a time, hard timeouts, restarts.

The search (ruin-and-recreate in the compiled kernel, then OR-Tools when it runs) holds the GIL
for its whole run, and two OR-Tools routing models in one process are reported to crash
(OR-Tools issue #5076), so searches, and a storm request's zones, run in worker processes.
Each worker is a plain :mod:`multiprocessing` process talking over its own
:func:`~multiprocessing.Pipe`. The pool
runs picklable callables (:meth:`SolverPool.run`: a module-level function, or a
:func:`functools.partial` of one): it knows nothing of what they compute. It hands each call an
idle worker (callers wait in line when none is idle), passes on the interim results a job
sends before its answer, kills a worker that is still busy after the hard timeout
(``SIGKILL``) and starts a fresh one in its place. :meth:`SolverPool.solve` is the search tasks
of :mod:`solver.engines.search` on top of it.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import itertools
import multiprocessing
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from solver.engines.search import TASKS, run_task
from solver.model import Problem
from solver.params import SolverParams
from solver.plan import Plan, Unassigned
from solver.routes import Visit


class WorkerError(RuntimeError):
    """A pooled job did not produce its result.

    ``interims`` holds what the job sent before it failed (e.g. greedy plans), oldest first;
    ``fallback`` is the last of them, if any.
    """

    interims: tuple[Any, ...] = ()

    @property
    def fallback(self) -> Any:
        """The last interim result the job sent, or ``None``."""
        return self.interims[-1] if self.interims else None


class WorkerTimeout(WorkerError):  # noqa: N818 (name fixed by the service contract)
    """The worker was still busy at the hard timeout; it was killed and replaced."""


class WorkerCrashed(WorkerError):  # noqa: N818 (name fixed by the service contract)
    """The worker process died during the solve; it was replaced."""


class WorkerSolveError(WorkerError):
    """The solve raised an exception inside the worker (the worker is kept)."""


class PoolBusyError(WorkerError):
    """No worker became idle before the hard timeout."""


class PoolClosedError(WorkerError):
    """The pool is closed (or was never started)."""


#: A job: called in the worker as ``job(payload, time_limit_s, interim)``; ``interim(obj)`` sends
#: ``obj`` back at once (the caller keeps it in case the worker then fails).
Job = Callable[[Any, float, Callable[[Any], None]], Any]


def search_job(
    payload: tuple[Any, ...], time_limit_s: float, interim: Callable[[Any], None]
) -> Plan:
    """The job behind :meth:`SolverPool.solve`: one of :data:`solver.engines.search.TASKS`."""
    task, problem, params, initial, reasons = payload
    return run_task(
        task,
        problem,
        params,
        time_limit_s=time_limit_s,
        initial=initial,
        reasons=reasons,
    )


def _worker_main(
    conn: Connection, warm: bool, nice: int = 0, initializer: Callable[[], None] | None = None
) -> None:
    """Body of a worker process: lower its priority by ``nice``, warm up, run ``initializer``
    (e.g. load the campus travel tables), say ready, then run jobs until told to stop."""
    from solver.engines.kernel import warm_up
    from solver.engines.ortools import solve_ortools
    from solver.model import warm_problem

    if nice:
        with contextlib.suppress(OSError):  # not permitted here: run at the parent's priority
            os.nice(nice)

    if warm:
        # A failed warm-up must not keep the worker from serving.
        with contextlib.suppress(Exception):
            warm_up()  # the compiled kernel, from numba's cache
            solve_ortools(warm_problem(), SolverParams(), time_limit_s=0.02)
    if initializer is not None:
        with contextlib.suppress(Exception):  # jobs then load what they need themselves
            initializer()
    # what start-up loaded lives as long as the worker: keep it out of the garbage collector's
    # full passes (a first storm-sized job paid 110 ms for one while pickling its answer)
    gc.collect()
    gc.freeze()
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        task_id, job, payload, time_limit_s = message

        def interim(result: Any, task_id: int = task_id) -> None:
            conn.send(("interim", task_id, result))

        try:
            reply: tuple[Any, ...] = ("ok", task_id, job(payload, time_limit_s, interim))
        except Exception as exc:
            reply = ("error", task_id, f"{type(exc).__name__}: {exc}", traceback.format_exc())
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return


@dataclass(eq=False)
class _Worker:
    """A worker process and the parent's end of its pipe."""

    process: BaseProcess
    conn: Connection
    pid: int | None


class SolverPool:
    """A fixed-size pool of solver worker processes (zones, searches), safe to call from many
    threads.

    Parameters
    ----------
    size
        Number of worker processes (one solve at a time each); at most the number of cores is
        sensible.
    context
        ``"spawn"`` (default) or ``"forkserver"``: how worker processes are started. ``"fork"``
        is refused (OR-Tools and threads in the parent do not survive a fork safely).
    warm
        Run a tiny solve in each worker before it takes work (the first solve in a cold
        process costs 55-100 ms more).
    start_timeout_s
        How long a worker may take to boot and warm up before :meth:`start` gives up.
    nice
        How much lower than the caller's the workers' CPU priority is (``os.nice``; 0: same).
        A search fills its budget of wall time with as much CPU as it gets, while the
        caller's own work (conversions, greedy plans, answers) is what a client waits for:
        with more busy processes than cores, a niced search gives way to it instead of
        slicing the CPU evenly, and only searches a little less.
    initializer
        A picklable callable each worker runs once after its warm-up, before it reports ready
        (the service loads the campus travel tables there, where the matrices are built).

    Examples
    --------
    >>> with SolverPool(2) as pool:                          # doctest: +SKIP
    ...     plan = pool.solve(problem, params, time_limit_s=0.5, hard_timeout_s=0.8)
    """

    #: How often (s) idle workers are checked for life.
    WATCH_INTERVAL_S = 0.5

    def __init__(
        self,
        size: int,
        *,
        context: str = "spawn",
        warm: bool = True,
        start_timeout_s: float = 60.0,
        nice: int = 0,
        initializer: Callable[[], None] | None = None,
    ) -> None:
        if size < 1:
            raise ValueError(f"size={size!r}: must be >= 1")
        if not 0 <= nice <= 19:
            raise ValueError(f"nice={nice!r}: must be between 0 and 19")
        if context not in ("spawn", "forkserver"):
            raise ValueError(f"context={context!r}: must be 'spawn' or 'forkserver'")
        self.size = size
        self._ctx: Any = multiprocessing.get_context(context)
        self._warm = warm
        self._start_timeout_s = start_timeout_s
        self.nice = nice
        self._initializer = initializer
        self._lock = threading.Lock()
        self._idle: queue.Queue[_Worker] = queue.Queue()
        # Callers waiting for a worker, oldest first: only the head takes from ``_idle``, so
        # a caller admitted to wait for the next free worker is not overtaken.
        self._line: collections.deque[object] = collections.deque()
        self._line_cond = threading.Condition()
        self._workers: set[_Worker] = set()
        self._starters: set[threading.Thread] = set()
        self._waiting = 0
        self._finishes: dict[object, float] = {}  # expected end of each job running or waiting
        self._queued_total = 0
        self._restarts = 0
        self._started = False
        self._closed = False
        self._task_ids = itertools.count(1)
        self._stopping = threading.Event()
        self._watchdog: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> SolverPool:
        """Start and warm every worker; returns when all are ready (or raises)."""
        with self._lock:
            if self._closed:
                raise PoolClosedError("the pool is closed")
            if self._started:
                return self
            self._started = True
        booting = [self._spawn() for _ in range(self.size)]
        deadline = time.monotonic() + self._start_timeout_s
        for worker in booting:
            if not self._await_ready(worker, deadline):
                self.close()
                raise WorkerCrashed(f"worker {worker.pid} did not start")
            self._idle.put(worker)
        self._watchdog = threading.Thread(target=self._watch, name="solver-pool-watch", daemon=True)
        self._watchdog.start()
        return self

    def close(self) -> None:
        """Stop every worker (idle ones politely, busy ones by ``SIGKILL``); idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers = list(self._workers)
            starters = list(self._starters)
        self._stopping.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=5.0)
        for thread in starters:
            thread.join(timeout=self._start_timeout_s)
        idle: list[_Worker] = []
        while True:
            try:
                idle.append(self._idle.get_nowait())
            except queue.Empty:
                break
        for worker in idle:
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(None)
        until = time.monotonic() + 1.0
        for worker in idle:
            with contextlib.suppress(ValueError):
                worker.process.join(timeout=max(0.0, until - time.monotonic()))
        for worker in [*idle, *workers]:
            self._discard(worker)

    def __enter__(self) -> SolverPool:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- introspection
    @property
    def restarts(self) -> int:
        """Workers replaced so far (after a timeout or a crash)."""
        return self._restarts

    @property
    def queue_depth(self) -> int:
        """Callers currently waiting for an idle worker."""
        return self._waiting

    @property
    def queued_total(self) -> int:
        """Solves so far that found no idle worker and had to wait for one."""
        return self._queued_total

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until every worker is idle and alive (the pool has healed); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                starting = bool(self._starters)
                alive = sum(1 for w in self._workers if w.process.is_alive())
            if not starting and alive == self.size and self._idle.qsize() == self.size:
                return True
            time.sleep(0.02)
        return False

    @property
    def idle_workers(self) -> int:
        """Workers ready to take a solve now."""
        return self._idle.qsize()

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for monitoring and tests)."""
        with self._lock:
            return sorted(w.pid for w in self._workers if w.pid is not None)

    # ----------------------------------------------------------------- solving
    def run(
        self,
        job: Job,
        payload: Any,
        *,
        time_limit_s: float,
        hard_timeout_s: float | None = None,
        wait_timeout_s: float | None = None,
    ) -> Any:
        """Run ``job(payload, time_limit_s, interim)`` in an idle worker; its return value.

        Parameters
        ----------
        job
            A picklable callable (module-level function or a partial of one).
        payload
            Its picklable input.
        time_limit_s
            The job's own time limit (s). Time spent waiting for an idle worker is taken off.
        hard_timeout_s
            Wall-clock limit (s) of this call, waiting for a worker included; a worker still
            busy then is killed and replaced. Default: ``time_limit_s + 1``.
        wait_timeout_s
            How long to wait for an idle worker (callers are served in arrival order);
            default, and at most, ``hard_timeout_s``.

        Raises
        ------
        WorkerTimeout
            The worker overran ``hard_timeout_s`` (it was killed and replaced).
        WorkerCrashed
            The worker died (it was replaced).
        WorkerSolveError
            The job raised inside the worker.
        PoolBusyError
            No worker became idle within ``wait_timeout_s`` (or ``hard_timeout_s``).
        PoolClosedError
            The pool is closed or not started.

        Every :class:`WorkerError` but the last two carries the job's interim results.
        """
        started = time.monotonic()
        hard = time_limit_s + 1.0 if hard_timeout_s is None else hard_timeout_s
        deadline = started + hard
        wait_until = deadline if wait_timeout_s is None else started + min(hard, wait_timeout_s)
        ticket = object()
        with self._lock:  # when this job should end, for expected_wait_s of the callers after:
            # its time limit counts from now (waiting eats into it), unless the wait is longer
            self._finishes[ticket] = started + max(self._wait_locked(started), time_limit_s)
        try:
            return self._run(job, payload, time_limit_s, started, deadline, hard, wait_until)
        finally:
            with self._lock:
                self._finishes.pop(ticket, None)

    def expected_wait_s(self) -> float:
        """How long a job submitted now would wait for a worker: the jobs running and waiting
        end when their time limits say (the k-th caller in line gets the k-th worker to free
        up). Callers use it to shed at once rather than wait in vain."""
        with self._lock:
            return self._wait_locked(time.monotonic())

    def _wait_locked(self, now: float) -> float:
        finishes = sorted(self._finishes.values())
        if len(finishes) < self.size:
            return 0.0
        return max(0.0, finishes[len(finishes) - self.size] - now)

    def _run(
        self,
        job: Job,
        payload: Any,
        time_limit_s: float,
        started: float,
        deadline: float,
        hard: float,
        wait_until: float,
    ) -> Any:
        while True:
            worker = self._acquire(wait_until)
            task_id = next(self._task_ids)
            waited = time.monotonic() - started
            message = (task_id, job, payload, max(0.0, time_limit_s - waited))
            try:
                worker.conn.send(message)
            except (OSError, ValueError):
                self._replace(worker)  # died while idle; the job never reached it
                continue
            break
        interims: list[Any] = []
        while True:
            try:
                reply = self._receive(worker, deadline, hard)
            except WorkerError as exc:
                exc.interims = tuple(interims)
                raise
            if reply[0] == "interim" and reply[1] == task_id:
                interims.append(reply[2])
                continue
            break
        error: WorkerError
        if reply[0] == "ok" and reply[1] == task_id:
            self._release(worker)
            return reply[2]
        if reply[0] == "error" and reply[1] == task_id:
            self._release(worker)
            error = WorkerSolveError(f"{reply[2]}\n{reply[3]}")
        else:
            self._replace(worker)
            error = WorkerCrashed(f"worker {worker.pid} answered out of turn: {reply[:2]!r}")
        error.interims = tuple(interims)
        raise error

    def solve(
        self,
        problem: Problem,
        params: SolverParams,
        time_limit_s: float,
        initial: Mapping[str, Sequence[Visit]] | None = None,
        reasons: Mapping[str, Unassigned] | None = None,
        hard_timeout_s: float | None = None,
        task: str = "ortools",
        wait_timeout_s: float | None = None,
    ) -> Plan:
        """Run a search task (one of :data:`solver.engines.search.TASKS`) in an idle worker:
        ``"ortools"`` runs :func:`~solver.engines.ortools.solve_ortools`; ``"search"`` and
        ``"ruin_recreate"`` run :func:`~solver.engines.search.search_plan` from ``initial``
        (with and without OR-Tools after it; without ``initial``, OR-Tools alone). The other
        arguments and the errors are those of :meth:`run`.
        """
        if task not in TASKS:
            raise ValueError(f"task={task!r}: must be one of {TASKS}")
        payload = (
            task,
            problem,  # pickles as its constructor's arguments (Problem.__reduce__)
            params,
            None if initial is None else {k: list(v) for k, v in initial.items()},
            None if reasons is None else dict(reasons),
        )
        plan: Plan = self.run(
            search_job,
            payload,
            time_limit_s=time_limit_s,
            hard_timeout_s=hard_timeout_s,
            wait_timeout_s=wait_timeout_s,
        )
        return plan

    def _receive(self, worker: _Worker, deadline: float, hard: float) -> tuple[Any, ...]:
        """The worker's next message; a worker that is lost, dies or is still silent at
        ``deadline`` is replaced and the matching :class:`WorkerError` raised."""
        try:
            ready = worker.conn.poll(max(0.0, deadline - time.monotonic()))
        except (OSError, ValueError) as exc:
            self._replace(worker)
            raise WorkerCrashed(f"worker {worker.pid} lost: {exc}") from exc
        if not ready:
            self._replace(worker)
            raise WorkerTimeout(f"worker {worker.pid} still busy after {hard:.3f} s; killed")
        try:
            reply: tuple[Any, ...] = worker.conn.recv()
        except (EOFError, OSError) as exc:
            worker.process.join(timeout=0.1)
            code = worker.process.exitcode
            self._replace(worker)
            raise WorkerCrashed(f"worker {worker.pid} died (exit code {code})") from exc
        return reply

    # ----------------------------------------------------------------- internals
    def _spawn(self) -> _Worker:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=_worker_main,
            args=(child_conn, self._warm, self.nice, self._initializer),
            name="solver-worker",
            daemon=True,
        )
        process.start()
        child_conn.close()  # so the parent sees EOF when the child dies
        worker = _Worker(process, parent_conn, process.pid)
        with self._lock:
            self._workers.add(worker)
        return worker

    def _await_ready(self, worker: _Worker, deadline: float) -> bool:
        try:
            if not worker.conn.poll(max(0.0, deadline - time.monotonic())):
                return False
            message = worker.conn.recv()
        except (EOFError, OSError):
            return False
        return bool(message and message[0] == "ready")

    def _acquire(self, deadline: float) -> _Worker:
        """An idle live worker, callers served first come first served, or PoolBusyError."""
        with self._lock:
            if self._closed or not self._started:
                raise PoolClosedError(
                    "the pool is closed" if self._closed else "call start() first"
                )
            self._waiting += 1
        ticket = object()
        queued = False  # counted once in ``queued_total`` if no worker was free on arrival
        try:
            with self._line_cond:
                self._line.append(ticket)
                queued = self._line[0] is not ticket or self._idle.empty()
                if queued:
                    with self._lock:
                        self._queued_total += 1
                while self._line[0] is not ticket:  # wait for our turn in the line
                    timeout = deadline - time.monotonic()
                    if timeout <= 0:
                        raise PoolBusyError("no idle worker before the wait timeout")
                    if self._closed:
                        raise PoolClosedError("the pool is closed")
                    self._line_cond.wait(min(timeout, 0.1))
            try:
                worker = self._idle.get_nowait()
                if worker.process.is_alive():
                    return worker
                self._replace(worker)
            except queue.Empty:
                pass
            if not queued:  # the free worker on arrival was dead, or taken meanwhile
                with self._lock:
                    self._queued_total += 1
            while True:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    raise PoolBusyError("no idle worker before the wait timeout")
                try:
                    worker = self._idle.get(timeout=min(timeout, 0.1))
                except queue.Empty:
                    if self._closed:
                        raise PoolClosedError("the pool is closed") from None
                    continue
                if worker.process.is_alive():
                    return worker
                self._replace(worker)  # died while idle: replace it, take the next one
        finally:
            with self._line_cond:
                self._line.remove(ticket)
                self._line_cond.notify_all()
            with self._lock:
                self._waiting -= 1

    def _watch(self) -> None:
        """Replace idle workers that died (OOM killer, operator) before a caller trips on them."""
        while not self._stopping.wait(self.WATCH_INTERVAL_S):
            with self._idle.mutex:
                dead = [w for w in self._idle.queue if not w.process.is_alive()]
                for worker in dead:
                    self._idle.queue.remove(worker)
            for worker in dead:
                self._replace(worker)

    def _release(self, worker: _Worker) -> None:
        if self._closed:
            self._stop(worker)
        else:
            self._idle.put(worker)

    def _stop(self, worker: _Worker) -> None:
        with contextlib.suppress(OSError, ValueError):
            worker.conn.send(None)
        with contextlib.suppress(ValueError):
            worker.process.join(timeout=1.0)
        self._discard(worker)

    def _discard(self, worker: _Worker) -> None:
        """Kill (if still alive) and forget ``worker``; a second call does nothing."""
        with self._lock:
            if worker not in self._workers:
                return
            self._workers.discard(worker)
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=5.0)
        worker.conn.close()
        with contextlib.suppress(ValueError):
            worker.process.close()

    def _replace(self, worker: _Worker) -> None:
        """Kill ``worker`` and start a fresh one; it joins the idle queue once warm."""
        self._discard(worker)
        with self._lock:
            self._restarts += 1
            if self._closed:
                return
            thread = threading.Thread(target=self._boot_replacement, name="solver-pool-boot")
            self._starters.add(thread)
        thread.start()

    def _boot_replacement(self) -> None:
        try:
            for _ in range(3):
                if self._closed:
                    return
                worker = self._spawn()
                if self._await_ready(worker, time.monotonic() + self._start_timeout_s):
                    self._release(worker)
                    return
                self._discard(worker)
        finally:
            with self._lock:
                self._starters.discard(threading.current_thread())
