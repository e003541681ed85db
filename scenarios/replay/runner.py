"""Running replays end to end: one scenario against several policies (in this process, in
parallel processes, or through a server), then the KPI table, JSON, CSV and pictures."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from campus_maps import Campus, default_maps_dir, load_campus
from scenarios.model import Scenario, load_scenario
from scenarios.replay.kpis import compute_kpis, format_table, write_kpis, write_orders_csv
from scenarios.replay.policies import POLICIES, Policy, make_policy
from scenarios.replay.simulate import ReplayConfig, ReplayResult, Simulator, busiest_moment
from scenarios.replay.travel import travel_for_scenario
from solver.params import SolverParams


class ReplayError(Exception):
    """A replay that cannot run as asked (a policy name, the settings): the message says what
    and what to do."""


class ServerUnreachableError(ReplayError):
    """``replay --server``: no dispatch service answered at the address, or it does not plan
    on the scenario's campus (checked once before the replay, not batch after batch)."""


def check_server(address: str, campus_id: str, *, timeout_s: float = 5.0) -> None:
    """Ask the service at ``address`` for its campuses; raise :class:`ServerUnreachableError`
    when none answers or ``campus_id`` is not among them."""
    from api.client import DispatchClient, RpcError, status_name

    with DispatchClient(address, client_id="replay") as client:
        try:
            listed = client.list_campuses(timeout_s=timeout_s).campuses
        except RpcError as err:
            raise ServerUnreachableError(
                f"no dispatch service answered at --server {address} ({status_name(err)}): "
                "start one with `campus-dispatch serve`, or give its host:port"
            ) from None
    served = [c.id for c in listed]
    if campus_id not in served:
        raise ServerUnreachableError(
            f"the service at {address} does not plan on campus {campus_id!r} (it plans on "
            f"{', '.join(served) or 'none'}): add the campus to its configuration, or replay "
            "a scenario on one of those"
        )


@dataclass(frozen=True)
class ReplayJob:
    """One replay to run.

    Attributes
    ----------
    scenario_path
        The scenario file.
    policy
        A name from :data:`scenarios.replay.policies.POLICIES`, or ``"service"`` with ``server``.
    params
        Solver parameters.
    budget_s
        Budget of each dispatch call (s).
    config
        Batch interval and the rest of the replay settings.
    server
        ``host:port`` of a running service (campus scenarios): the policy is the service.
    record_dir
        Write every request of the replay there (SolveRequest JSON; campus scenarios).
    record_every, record_limit
        Write every n-th batch, at most this many files.
    workers
        Worker processes for the in-process search (0: in this process).
    progress
        Show a progress bar (stderr); ``position`` is its line when several run at once.
    position
        Line of the progress bar.
    """

    scenario_path: Path
    policy: str
    params: SolverParams = field(default_factory=SolverParams)
    budget_s: float = 0.2
    config: ReplayConfig = field(default_factory=ReplayConfig)
    server: str = ""
    record_dir: Path | None = None
    record_every: int = 1
    record_limit: int | None = None
    workers: int = 0
    progress: bool = False
    position: int = 0


def _policy_for(job: ReplayJob, scenario: Scenario) -> Policy:
    if job.server:
        if scenario.geometry.kind != "campus":
            raise ValueError(
                f"{job.scenario_path}: --server needs a campus scenario "
                f"(this one is {scenario.geometry.kind})"
            )
        from scenarios.replay.remote import GrpcService

        return GrpcService(job.server, scenario.geometry.campus_id, job.budget_s)
    return make_policy(job.policy, job.params, job.budget_s, workers=job.workers)


def run_job(job: ReplayJob) -> ReplayResult:
    """Run one replay (loads the scenario and its campus; safe to run in a worker process)."""
    scenario = load_scenario(job.scenario_path)
    travel = travel_for_scenario(scenario)
    policy = _policy_for(job, scenario)
    record: Any = None
    if job.record_dir is not None:
        if scenario.geometry.kind != "campus":
            raise ValueError("recording requests needs a campus scenario")
        from scenarios.replay.remote import RequestRecorder

        record = RequestRecorder(
            job.record_dir,
            scenario.geometry.campus_id,
            job.budget_s,
            every=job.record_every,
            limit=job.record_limit,
        )
    bar: Any = None
    progress = None
    if job.progress:
        from tqdm import tqdm

        bar = tqdm(
            total=1,  # set by the first call: the minutes of the period, then the end
            desc=f"{policy.name:>8}",
            unit="min",
            position=job.position,
            leave=True,
            file=sys.stderr,
            disable=None,  # off when stderr is not a terminal (CI logs, pipes)
            mininterval=0.5,
            bar_format="{desc} {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} virtual min "
            "[{elapsed}<{remaining}]",
        )

        def progress(t: int, end: int) -> None:
            # ``end`` is where the replay expects to stop (the last shift end or order), and
            # the end itself on the last call: the bar ends at 100 %
            bar.total = max(1, round(end / 60))
            bar.update(min(bar.total, round(t / 60)) - bar.n)

    try:
        simulator = Simulator(
            scenario, travel, policy, job.params, job.config, progress=progress, record=record
        )
        return simulator.run()
    finally:
        policy.close()
        if bar is not None:
            bar.close()


def run_replays(
    jobs: Sequence[ReplayJob],
    *,
    processes: int = 1,
    on_done: Callable[[ReplayResult], None] | None = None,
) -> list[ReplayResult]:
    """Run replays one after another, or ``processes`` at a time in worker processes; the
    results come in the order of ``jobs``, and ``on_done`` is called as each one finishes."""
    if processes <= 1 or len(jobs) <= 1:
        results = []
        for job in jobs:
            results.append(run_job(job))
            if on_done is not None:
                on_done(results[-1])
        return results
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(processes, mp_context=context) as pool:
        futures = [pool.submit(run_job, job) for job in jobs]
        for future in concurrent.futures.as_completed(futures):
            if on_done is not None:
                on_done(future.result())
        return [future.result() for future in futures]


def report_replays(
    results: Sequence[ReplayResult],
    out_dir: Path | None,
    *,
    pictures: bool = True,
    map_policy: str | None = None,
    campus: Campus | None = None,
) -> str:
    """The KPI table of ``results``; with ``out_dir``, also kpis.json, kpis.csv, one orders
    CSV per policy, ``kpis.png`` (KPIs over the period) and a ``routes-<policy>.png`` per
    policy (``map_policy`` alone when given): each replay's route snapshot on ``campus``'s
    roads when given, all in the same frame so the maps compare (and at the same moment when
    the replays were run with the same ``ReplayConfig.snapshot_at_s``, as
    :func:`replay_scenario` does)."""
    kpis = {r.policy: compute_kpis(r) for r in results}
    table = format_table(kpis)
    if out_dir is None or not results:
        return table
    scenario = results[0].scenario
    written = write_kpis(kpis, out_dir, scenario)
    for r in results:
        written.append(write_orders_csv(r, Path(out_dir) / f"orders-{r.policy}.csv"))
    if pictures:
        from scenarios.replay.plots import plot_kpis_over_time, plot_route_map

        written.append(plot_kpis_over_time(results, Path(out_dir) / "kpis.png", title=scenario))
        mapped = [
            r
            for r in results
            if r.snapshot is not None and (map_policy is None or r.policy == map_policy)
        ]
        for r in mapped:
            written.append(
                plot_route_map(
                    r, Path(out_dir) / f"routes-{r.policy}.png", campus=campus, frame_with=mapped
                )
            )
    return table + "\n\nwritten: " + ", ".join(str(p) for p in written)


def replay_scenario(
    scenario_path: Path,
    policies: Sequence[str] = POLICIES,
    *,
    params: SolverParams | None = None,
    budget_s: float = 0.2,
    config: ReplayConfig | None = None,
    server: str = "",
    out_dir: Path | None = None,
    processes: int = 1,
    progress: bool = False,
    record_dir: Path | None = None,
    pictures: bool = True,
) -> tuple[list[ReplayResult], str]:
    """Replay one scenario against each policy (or the server) and report; returns the
    results and the printed report.

    Every policy's route map shows the same moment: the scenario's demand peak
    (:func:`~scenarios.replay.simulate.busiest_moment`) unless ``config.snapshot_at_s`` says
    otherwise.

    Raises
    ------
    ReplayError
        An unknown policy, none, or (:class:`ServerUnreachableError`) no service answering at
        ``server`` or not planning on the scenario's campus.
    """
    scenario = load_scenario(scenario_path)
    params = params or SolverParams()
    config = config or ReplayConfig()
    if config.snapshot_at_s is None:
        at = busiest_moment(scenario, config.batch_interval_s)
        config = dataclasses.replace(config, snapshot_at_s=at)
    unknown = [p for p in policies if p not in POLICIES]
    if not server and (unknown or not policies):
        what = f"unknown policy {unknown[0]!r}" if unknown else "no policy to replay"
        raise ReplayError(f"{what}: choose from {', '.join(POLICIES)}")
    if server:
        if scenario.geometry.kind != "campus":
            raise ReplayError(
                f"{scenario_path}: --server needs a campus scenario "
                f"(this one is {scenario.geometry.kind})"
            )
        check_server(server, scenario.geometry.campus_id)
    names = ["service"] if server else list(dict.fromkeys(policies))
    jobs = [
        ReplayJob(
            scenario_path,
            name,
            params,
            budget_s,
            config,
            server=server,
            record_dir=record_dir if k == 0 else None,
            progress=progress,
            position=k if processes > 1 else 0,
        )
        for k, name in enumerate(names)
    ]
    results = run_replays(jobs, processes=processes)
    campus = None
    if out_dir is not None and pictures and scenario.geometry.kind == "campus":
        campus = load_campus(scenario.geometry.campus_id, maps_dir=default_maps_dir())
    report = report_replays(results, out_dir, pictures=pictures, campus=campus)
    return results, scenario.summary() + "\n" + report
