"""Recorded SolveRequests for load tests: record them from a scenario replay, read them back.

Run ``python -m load.recorded SCENARIO -o DIR [--every 20] [--policy greedy]`` to record (this
is how ``load/requests/northwestern-lunch/`` was made; ``make load-record`` redoes it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from google.protobuf import json_format

from api.client import read_request
from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb

#: The recorded set shipped with the load tests (Northwestern lunch, every 20th batch).
RECORDED = Path(__file__).resolve().parent / "requests" / "northwestern-lunch"


def read_requests(folder: str | Path = RECORDED) -> list[pb.SolveRequest]:
    """Every ``*.json`` SolveRequest in ``folder``, in file-name order.

    Raises
    ------
    FileNotFoundError
        The folder does not exist or holds no JSON file.
    ValueError
        A file is not a SolveRequest (names the file).
    """
    folder = Path(folder)
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        raise FileNotFoundError(f"{folder}: no recorded requests (*.json); see load/recorded.py")
    requests = []
    for path in files:
        try:
            requests.append(read_request(path))
        except json_format.ParseError as exc:
            raise ValueError(f"{path}: not a SolveRequest: {exc}") from exc
    return requests


def record_requests(
    scenario: Path,
    out: Path,
    *,
    every: int = 20,
    limit: int | None = None,
    policy: str = "greedy",
    budget_s: float = 0.2,
) -> list[Path]:
    """Replay ``scenario`` with ``policy`` and write every ``every``-th batch's SolveRequest
    into ``out`` (cleared of earlier ``req-*.json`` first); returns the files written.

    The default greedy policy is deterministic, so the same scenario gives the same files;
    ``search`` runs the service's own dispatch in-process (closer to what the service would
    have planned, but time-limited, so not reproducible).
    """
    from scenarios.replay.runner import ReplayJob, run_job

    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("req-*.json"):
        old.unlink()
    run_job(
        ReplayJob(
            scenario,
            policy,
            budget_s=budget_s,
            record_dir=out,
            record_every=every,
            record_limit=limit,
        )
    )
    return sorted(out.glob("req-*.json"))


def main(argv: Sequence[str] | None = None) -> int:
    """Record SolveRequests from a scenario replay."""
    parser = argparse.ArgumentParser(prog="python -m load.recorded", description=__doc__)
    parser.add_argument("scenario", type=Path, help="campus scenario JSON")
    parser.add_argument("-o", "--out", type=Path, default=RECORDED, help="folder to write")
    parser.add_argument("--every", type=int, default=20, help="record every n-th batch")
    parser.add_argument("--limit", type=int, default=None, help="at most this many files")
    parser.add_argument("--policy", default="greedy", help="replay policy (greedy, search)")
    parser.add_argument("--budget", type=float, default=0.2, help="time_budget written (s)")
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error(f"--every={args.every}: must be >= 1")
    written = record_requests(
        args.scenario,
        args.out,
        every=args.every,
        limit=args.limit,
        policy=args.policy,
        budget_s=args.budget,
    )
    sizes = [len(r.orders) for r in read_requests(args.out)]
    print(
        f"{args.out}: {len(written)} requests from {args.scenario} "
        f"(orders per request {min(sizes)}-{max(sizes)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
