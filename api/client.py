"""Small Python clients of the DispatchService (JSON in, JSON out through json_format) and of
the AdminService (bearer token from the environment or a file)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from api.codec import seconds_of
from api.pb.campus_dispatch.v1 import admin_pb2 as apb
from api.pb.campus_dispatch.v1 import admin_pb2_grpc as apb_grpc
from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from api.pb.campus_dispatch.v1 import dispatch_pb2_grpc as pb_grpc

#: What a failed call raises (``status_name`` gives its status code's name).
RpcError = grpc.RpcError


def status_name(err: grpc.RpcError) -> str:
    """The name of a failed call's status code (``"UNKNOWN"`` when it has none)."""
    code = getattr(err, "code", None)
    return code().name if callable(code) else "UNKNOWN"


def retry_delay_s(err: grpc.RpcError, default: float = 0.1) -> float:
    """The server's retry hint (``google.rpc.RetryInfo``) of a refused call, else ``default``."""
    status = rpc_status.from_call(err)
    retry = error_details_pb2.RetryInfo()
    for detail in status.details if status is not None else ():
        if detail.Unpack(retry):
            return seconds_of(retry.retry_delay)
    return default


def bad_fields(err: grpc.RpcError) -> list[tuple[str, str]]:
    """``(field, description)`` of every ``google.rpc.BadRequest`` violation of a failed call."""
    status = rpc_status.from_call(err)
    out: list[tuple[str, str]] = []
    for detail in status.details if status is not None else ():
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            out += [(v.field, v.description) for v in bad.field_violations]
    return out


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


class AdminClient:
    """Calls GetConfig, UpdateConfig, ReloadConfig and LoadCampus on ``address`` with an admin
    token."""

    def __init__(self, address: str, token: str, *, client_id: str = "") -> None:
        self.channel = grpc.insecure_channel(address)
        self.stub = apb_grpc.AdminServiceStub(self.channel)
        metadata = [("authorization", f"Bearer {token}")] if token else []
        if client_id:
            metadata.append(("client-id", client_id))
        self.metadata = tuple(metadata)

    def get_config(self, *, timeout_s: float = 5.0) -> apb.GetConfigResponse:
        """The configuration in force."""
        return self.stub.GetConfig(
            apb.GetConfigRequest(), timeout=timeout_s, metadata=self.metadata
        )

    def update_config(
        self,
        settings: Mapping[str, str] | None = None,
        *,
        toml: str = "",
        dry_run: bool = False,
        if_version: int = 0,
        reason: str = "",
        timeout_s: float = 5.0,
    ) -> apb.ConfigChangeResponse:
        """Apply ``table.key`` -> TOML literal settings and/or a TOML document, all or none."""
        request = apb.UpdateConfigRequest(
            settings=dict(settings or {}),
            toml=toml,
            dry_run=dry_run,
            if_version=if_version,
            reason=reason,
        )
        return self.stub.UpdateConfig(request, timeout=timeout_s, metadata=self.metadata)

    def reload_config(
        self, *, reason: str = "", timeout_s: float = 5.0
    ) -> apb.ConfigChangeResponse:
        """Make the server read its configuration file again."""
        request = apb.ReloadConfigRequest(reason=reason)
        return self.stub.ReloadConfig(request, timeout=timeout_s, metadata=self.metadata)

    def load_campus(
        self, campus_id: str, *, reload: bool = False, reason: str = "", timeout_s: float = 30.0
    ) -> apb.LoadCampusResponse:
        """Make the server load ``campus_id`` (one newly onboarded in its maps directory), or
        load it again (``reload``: e.g. after ``campus add --force``), without a restart."""
        request = apb.LoadCampusRequest(campus_id=campus_id, reload=reload, reason=reason)
        return self.stub.LoadCampus(request, timeout=timeout_s, metadata=self.metadata)

    def list_held(
        self, campus_id: str = "", *, timeout_s: float = 5.0
    ) -> apb.ListHeldOrdersResponse:
        """A campus's storm guard: mode, level and held orders with their evidence."""
        request = apb.ListHeldOrdersRequest(campus_id=campus_id)
        return self.stub.ListHeldOrders(request, timeout=timeout_s, metadata=self.metadata)

    def review_orders(
        self,
        verdict: apb.Verdict,
        order_ids: Sequence[str] = (),
        *,
        customer_ids: Sequence[str] = (),
        campus_id: str = "",
        reason: str = "",
        timeout_s: float = 5.0,
    ) -> apb.ReviewOrdersResponse:
        """Release (``apb.VERDICT_RELEASE``) or confirm (``apb.VERDICT_CONFIRM``) held orders,
        by id or by account."""
        request = apb.ReviewOrdersRequest(
            campus_id=campus_id,
            order_ids=list(order_ids),
            customer_ids=list(customer_ids),
            verdict=verdict,
            reason=reason,
        )
        return self.stub.ReviewOrders(request, timeout=timeout_s, metadata=self.metadata)

    def set_guard_mode(
        self, mode: apb.GuardMode, *, campus_id: str = "", reason: str = "", timeout_s: float = 5.0
    ) -> apb.SetGuardModeResponse:
        """Set a campus's storm guard mode."""
        request = apb.SetGuardModeRequest(campus_id=campus_id, mode=mode, reason=reason)
        return self.stub.SetGuardMode(request, timeout=timeout_s, metadata=self.metadata)

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def format_change(response: apb.ConfigChangeResponse) -> str:
    """The diff of an UpdateConfig/ReloadConfig answer, one line per setting."""
    head = "dry run, nothing applied" if response.dry_run else f"config version {response.version}"
    lines = [f"{head}: {len(response.changes)} change(s) by {response.changed_by}"]
    lines += [f"  {c.key}: {c.old_value} -> {c.new_value}" for c in response.changes]
    lines += [
        f"  {c.key}: {c.new_value} in the file, {c.old_value} running (restart to apply)"
        for c in response.restart_required
    ]
    return "\n".join(lines)


def request_from_json(text: str) -> pb.SolveRequest:
    """Parse a SolveRequest from its proto3 JSON form (field names as in the proto or camelCase)."""
    return json_format.Parse(text, pb.SolveRequest())


def read_request(path: str | Path) -> pb.SolveRequest:
    """Read a SolveRequest JSON file."""
    return request_from_json(Path(path).read_text())


def response_to_dict(response: pb.SolveResponse) -> dict[str, Any]:
    """The response as plain JSON-ready data (proto field names)."""
    return json_format.MessageToDict(response, preserving_proto_field_name=True)


def clock_time(stamp: Timestamp, tz: tzinfo | None = None) -> str:
    """``12:05:00 CDT``: the time of day of ``stamp`` in ``tz`` (default UTC), with the zone's
    abbreviation (``UTC`` for UTC)."""
    return stamp.ToDatetime(tzinfo=UTC).astimezone(tz or UTC).strftime("%H:%M:%S %Z")


def format_response(response: pb.SolveResponse, tz: tzinfo | None = None) -> str:
    """A readable table of the plan: one line per stop, then unassigned orders and stats;
    times of day in ``tz`` (e.g. the campus's ``ZoneInfo``; default UTC), each with its zone."""
    lines = []
    for route in response.routes:
        if not route.stops:
            continue
        lines.append(
            f"rider {route.rider_id}: {len(route.stops)} stops, "
            f"{seconds_of(route.travel_time):.0f} s riding, {route.distance_m:.0f} m"
        )
        for stop in route.stops:
            late = seconds_of(stop.lateness)
            lines.append(
                f"  {pb.StopKind.Name(stop.kind):<8} {stop.order_id:<12} "
                f"arrive {clock_time(stop.arrival_time, tz)}  "
                f"leave {clock_time(stop.departure_time, tz)}"
                + (f"  late {late:.0f} s" if late > 0 else "")
            )
    idle = [r.rider_id for r in response.routes if not r.stops]
    if idle:
        lines.append(f"idle riders: {', '.join(idle)}")
    for u in response.unassigned:
        lines.append(f"unassigned {u.order_id}: {pb.UnassignedReason.Name(u.reason)} {u.detail}")
    for f in response.flagged:
        action = pb.GuardAction.Name(f.action).removeprefix("GUARD_ACTION_").lower()
        lines.append(f"flagged {f.order_id}: {action} ({f.evidence})")
    s = response.stats
    lines.append(
        f"engine {pb.Engine.Name(s.engine)}"
        + (f" (shed: {s.shed_reason})" if s.shed_reason else "")
        + f", objective {s.objective:.0f}, late orders {s.late_orders}, "
        + (f"reassigned orders {s.reassigned_orders}, " if s.reassigned_orders > 0 else "")
        + f"matrix {seconds_of(s.matrix_time) * 1e3:.1f} ms, "
        f"solve {seconds_of(s.solve_time) * 1e3:.1f} ms, "
        f"total {seconds_of(s.total_time) * 1e3:.1f} ms"
        + (f", storm level {s.storm_level}" if s.storm_level else "")
    )
    return "\n".join(lines)


def format_held(response: apb.ListHeldOrdersResponse) -> str:
    """A readable account of a campus's storm guard and the orders it holds."""
    mode = apb.GuardMode.Name(response.mode).removeprefix("GUARD_MODE_").lower()
    lines = [
        f"campus {response.campus_id}: guard mode {mode}, storm level {response.storm_level} "
        f"({response.level_reason}); {response.flagged_orders} orders flagged in the level "
        f"window; {len(response.held)} held"
    ]
    for h in response.held:
        state = f"confirmed by {h.reviewed_by}" if h.confirmed else "awaiting review"
        lines.append(
            f"  {h.order_id}  account {h.customer_id or '-'}  to {h.destination}  "
            f"placed {h.placed_time.ToDatetime():%H:%M:%S}Z  "
            f"held {h.held_time.ToDatetime():%H:%M:%S}Z  [{state}]\n"
            f"    {h.detector}: {h.evidence}"
        )
    return "\n".join(lines)


def dumps(response: pb.SolveResponse) -> str:
    """The response as indented JSON."""
    return json.dumps(response_to_dict(response), indent=2)
