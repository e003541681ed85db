"""The locustfile of the dispatch load tests: DispatchUser replaying recorded requests, a load
shape (lunch rush, spike, soak) and the SLO verdict as the exit code.

Run (a server on 127.0.0.1:50051, e.g. ``make run``)::

    .venv/bin/locust -f load/locustfile.py --headless --host 127.0.0.1:50051 \\
        --shape lunch --shape-users 10 --budget-ms 200 --csv out/locust --html out/report.html

``make load`` and ``make load-cluster`` start the servers and run this for you.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from locust import LoadTestShape, events
from locust.env import Environment

from load.recorded import RECORDED, read_requests
from load.shapes import PROFILES, LoadProfile, make_profile
from load.slo import CallRecorder, Slo, check_slo
from load.users import DispatchUser

__all__ = ["DispatchShape", "DispatchUser"]

#: Every call of the run, to the millisecond, for the SLO verdict.
CALLS = CallRecorder()


@events.init_command_line_parser.add_listener
def add_options(parser: Any) -> None:
    """The dispatch load test's own command-line options."""
    group = parser.add_argument_group("campus-dispatch")
    group.add_argument("--requests-dir", default=str(RECORDED), help="recorded SolveRequest JSON")
    group.add_argument("--budget-ms", type=float, default=200.0, help="time_budget of each call")
    group.add_argument(
        "--deadline-margin-ms", type=float, default=500.0, help="deadline = budget + this"
    )
    group.add_argument("--pacing-s", type=float, default=2.0, help="one call per user per this")
    group.add_argument("--shape", choices=sorted(PROFILES), default="lunch", help="load shape")
    group.add_argument(
        "--shape-users", type=int, default=10, help="peak (lunch), base (spike), level (soak)"
    )
    group.add_argument("--shape-seconds", type=float, default=0.0, help="0: the profile's own")
    group.add_argument("--slo-margin-ms", type=float, default=50.0, help="p99 <= budget + this")
    group.add_argument("--max-error-ratio", type=float, default=0.01, help="RESOURCE_EXHAUSTED not")
    group.add_argument("--retry-unavailable", type=int, default=0, help="retries on UNAVAILABLE")
    group.add_argument("--slo-json", default="", help="write the SLO verdict as JSON here")


def profile_of(options: Any) -> LoadProfile:
    """The load profile the options ask for."""
    return make_profile(options.shape, options.shape_users, options.shape_seconds or None)


@events.init.add_listener
def configure_users(environment: Environment, **_kwargs: Any) -> None:
    """Load the recorded requests and configure DispatchUser from the command line."""
    options = environment.parsed_options
    if options is None:  # library use: the caller configures DispatchUser itself
        return
    DispatchUser.configure(
        read_requests(Path(options.requests_dir)),
        budget_s=options.budget_ms / 1000,
        pacing_s=options.pacing_s,
        deadline_margin_s=options.deadline_margin_ms / 1000,
        retry_unavailable=options.retry_unavailable,
    )
    environment.events.request.add_listener(CALLS.on_request)
    profile = profile_of(options)
    print(
        f"load: {profile.summary()}; pacing {options.pacing_s:g} s per user "
        f"(peak {profile.peak_users / options.pacing_s:.1f} calls/s); "
        f"{len(DispatchUser.requests)} recorded requests from {options.requests_dir}; "
        f"budget {options.budget_ms:g} ms",
        flush=True,
    )


@events.quitting.add_listener
def slo_verdict(environment: Environment, **_kwargs: Any) -> None:
    """Print the SLO verdict and make it the process's exit code."""
    options = environment.parsed_options
    if options is None:
        return
    slo = Slo(
        budget_ms=options.budget_ms,
        margin_ms=options.slo_margin_ms,
        max_error_ratio=options.max_error_ratio,
    )
    verdict = check_slo(CALLS.stats(), slo)
    print(verdict.summary(), flush=True)
    if options.slo_json:
        Path(options.slo_json).write_text(json.dumps(verdict.to_dict(), indent=2) + "\n")
    environment.process_exit_code = verdict.exit_code


class DispatchShape(LoadTestShape):
    """Plays the ``--shape`` (lunch, spike or soak) of ``--shape-users`` users."""

    profile: LoadProfile | None = None

    def tick(self) -> tuple[int, float] | None:
        """Users now, added or removed within the second."""
        if self.profile is None:
            assert self.runner is not None
            self.profile = profile_of(self.runner.environment.parsed_options)
        users = self.profile.users_at(self.get_run_time())
        return None if users is None else (users, float(min(100, max(users, 10))))
