"""A small Python client of the DispatchService (JSON in, JSON out through json_format)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from server.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from server.pb.campus_dispatch.v1 import dispatch_pb2_grpc as pb_grpc


class DispatchClient:
    """Calls Solve and ListCampuses on ``address`` (``host:port``)."""

    def __init__(self, address: str, *, client_id: str = "") -> None:
        self.channel = grpc.insecure_channel(address)
        self.stub = pb_grpc.DispatchServiceStub(self.channel)
        self.metadata = (("client-id", client_id),) if client_id else ()

    def solve(self, request: pb.SolveRequest, *, timeout_s: float | None = 5.0) -> pb.SolveResponse:
        """One Solve call with a deadline of ``timeout_s``."""
        return self.stub.Solve(request, timeout=timeout_s, metadata=self.metadata)

    def list_campuses(self, *, timeout_s: float = 5.0) -> pb.ListCampusesResponse:
        """The campuses the server plans on."""
        return self.stub.ListCampuses(pb.ListCampusesRequest(), timeout=timeout_s)

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()

    def __enter__(self) -> DispatchClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def request_from_json(text: str) -> pb.SolveRequest:
    """Parse a SolveRequest from its proto3 JSON form (field names as in the proto or camelCase)."""
    return json_format.Parse(text, pb.SolveRequest())


def read_request(path: str | Path) -> pb.SolveRequest:
    """Read a SolveRequest JSON file."""
    return request_from_json(Path(path).read_text())


def response_to_dict(response: pb.SolveResponse) -> dict[str, Any]:
    """The response as plain JSON-ready data (proto field names)."""
    return json_format.MessageToDict(response, preserving_proto_field_name=True)


def format_response(response: pb.SolveResponse) -> str:
    """A readable table of the plan: one line per stop, then unassigned orders and stats."""
    lines = []
    for route in response.routes:
        if not route.stops:
            continue
        lines.append(
            f"rider {route.rider_id}: {len(route.stops)} stops, "
            f"{route.travel_time.ToNanoseconds() / 1e9:.0f} s riding, {route.distance_m:.0f} m"
        )
        for stop in route.stops:
            late = stop.lateness.ToNanoseconds() / 1e9
            lines.append(
                f"  {pb.StopKind.Name(stop.kind):<8} {stop.order_id:<12} "
                f"arrive {stop.arrival_time.ToDatetime():%H:%M:%S}  "
                f"leave {stop.departure_time.ToDatetime():%H:%M:%S}"
                + (f"  late {late:.0f} s" if late > 0 else "")
            )
    idle = [r.rider_id for r in response.routes if not r.stops]
    if idle:
        lines.append(f"idle riders: {', '.join(idle)}")
    for u in response.unassigned:
        lines.append(f"unassigned {u.order_id}: {pb.UnassignedReason.Name(u.reason)} {u.detail}")
    s = response.stats
    lines.append(
        f"engine {pb.Engine.Name(s.engine)}"
        + (f" (shed: {s.shed_reason})" if s.shed_reason else "")
        + f", objective {s.objective:.0f}, late orders {s.late_orders}, "
        f"matrix {s.matrix_time.ToNanoseconds() / 1e6:.1f} ms, "
        f"solve {s.solve_time.ToNanoseconds() / 1e6:.1f} ms, "
        f"total {s.total_time.ToNanoseconds() / 1e6:.1f} ms"
    )
    return "\n".join(lines)


def dumps(response: pb.SolveResponse) -> str:
    """The response as indented JSON."""
    return json.dumps(response_to_dict(response), indent=2)
