"""The AdminService servicer: GetConfig, UpdateConfig and ReloadConfig over the live
configuration, LoadCampus over the campus registry, and ListHeldOrders, ReviewOrders and
SetGuardMode over the storm guards, behind the admin bearer token, every call logged with who
asked."""

from __future__ import annotations

import json
import logging
import tomllib
from collections.abc import Mapping
from typing import Any, NoReturn

import grpc
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status

from api.codec import EnumMap, timestamp_at
from api.pb.campus_dispatch.v1 import admin_pb2 as apb
from api.pb.campus_dispatch.v1 import admin_pb2_grpc as apb_grpc
from campus_maps import UnknownCampusError
from server.auth import AdminAuth, AuthError
from server.campuses import CampusFailedError, CampusRegistry
from server.config import (
    RESTART_ONLY,
    ConfigError,
    config_to_toml,
    flatten_config,
    settings_document,
)
from server.live import ConfigChange, LiveConfig, VersionConflictError
from server.metrics import Metrics
from server.servicer import _status, unknown_campus_status
from solver.params import format_value
from storm import GuardMode, Guards, ReviewOutcome

#: Guard modes on the wire.
GUARD_MODES: EnumMap[GuardMode, apb.GuardMode] = EnumMap(
    {mode: apb.GuardMode.Value(f"GUARD_MODE_{mode.name}") for mode in GuardMode}
)

LOG = logging.getLogger("campus_dispatch.admin")

#: Full name of the service (health and reflection).
ADMIN_SERVICE_NAME = apb.DESCRIPTOR.services_by_name["AdminService"].full_name


def caller(metadata: Mapping[str, str], peer: str, token_name: str = "") -> str:
    """How a caller appears in the change log: ``token <name>, client <id>, peer <peer>``."""
    parts = [f"token {token_name}"] if token_name else []
    if metadata.get("client-id"):
        parts.append(f"client {metadata['client-id']}")
    parts.append(f"peer {peer}")
    return ", ".join(parts)


def change_response(change: ConfigChange) -> apb.ConfigChangeResponse:
    """The wire form of a :class:`~server.live.ConfigChange` (values as TOML literals)."""

    def items(changes: Mapping[str, tuple[Any, Any]]) -> list[apb.SettingChange]:
        return [
            apb.SettingChange(key=k, old_value=format_value(old), new_value=format_value(new))
            for k, (old, new) in changes.items()
        ]

    return apb.ConfigChangeResponse(
        changes=items(change.changes),
        restart_required=items(change.restart_required),
        version=change.version,
        dry_run=change.dry_run,
        changed_by=change.who,
    )


def update_document(request: apb.UpdateConfigRequest) -> dict[str, dict[str, Any]]:
    """The tables an UpdateConfig request sets: its ``toml`` document, then its ``settings``
    over it (both validated by the live config; :class:`ConfigError` for unreadable input)."""
    document: dict[str, dict[str, Any]] = {}
    if request.toml.strip():
        try:
            parsed = tomllib.loads(request.toml)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("toml", request.toml[:60], f"not valid TOML: {exc}") from None
        for name, table in parsed.items():
            document[name] = dict(table) if isinstance(table, dict) else table
    for table, values in settings_document(dict(request.settings)).items():
        document.setdefault(table, {}).update(values)
    return document


class AdminServicer(apb_grpc.AdminServiceServicer):
    """Reads and changes the live configuration, loads campuses; every call needs an admin
    token."""

    def __init__(
        self,
        live: LiveConfig,
        auth: AdminAuth,
        metrics: Metrics,
        campuses: CampusRegistry | None = None,
        guards: Guards | None = None,
    ) -> None:
        self.live = live
        self.auth = auth
        self.metrics = metrics
        self.campuses = campuses
        self.guards = guards

    def _authorize(self, rpc: str, context: grpc.ServicerContext, reason: str = "") -> str:
        """The caller's description for the log (with ``reason``), or abort with
        UNAUTHENTICATED."""
        metadata = {k: str(v) for k, v in (context.invocation_metadata() or ())}
        try:
            name = self.auth.check(metadata)
        except AuthError as exc:
            self._audit("admin_denied", rpc, caller(metadata, context.peer()), "denied", str(exc))
            if rpc != "GetConfig":
                self.metrics.config_updates.labels(rpc, "denied").inc()
            context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
            raise  # not reached
        who = caller(metadata, context.peer(), name)
        return f"{who}, reason {reason!r}" if reason else who

    def GetConfig(  # noqa: N802
        self, request: apb.GetConfigRequest, context: grpc.ServicerContext
    ) -> apb.GetConfigResponse:
        """The configuration in force."""
        self._authorize("GetConfig", context)
        live = self.live
        config, version, changed_at = live.snapshot()
        response = apb.GetConfigResponse(
            toml=config_to_toml(config, f"campus-dispatch configuration, version {version}"),
            version=version,
            config_file=str(live.path),
        )
        response.changed_time.CopyFrom(timestamp_at(changed_at))
        for key, value in flatten_config(config).items():
            table, name = key.split(".", 1)
            response.settings.add(
                key=key,
                value=format_value(value),
                restart_only=table == "server" and name in RESTART_ONLY,
            )
        return response

    def UpdateConfig(  # noqa: N802
        self, request: apb.UpdateConfigRequest, context: grpc.ServicerContext
    ) -> apb.ConfigChangeResponse:
        """Validate and apply settings, all or nothing; the diff comes back."""
        who = self._authorize("UpdateConfig", context, request.reason)
        try:
            document = update_document(request)
        except ConfigError as exc:  # unreadable settings: the live config never saw them
            self._audit(
                "config_refused",
                "UpdateConfig",
                who,
                "invalid",
                str(exc),
                source="UpdateConfig",
                settings=dict(request.settings),
                version=self.live.version,
            )
            self._invalid("UpdateConfig", context, exc)
        try:
            change = self.live.update(
                document,
                who=who,
                source="UpdateConfig",
                dry_run=request.dry_run,
                expected_version=request.if_version,
            )
        except ConfigError as exc:
            self._invalid("UpdateConfig", context, exc)
        except VersionConflictError as exc:
            self.metrics.config_updates.labels("UpdateConfig", "invalid").inc()
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
            raise  # not reached: abort raises
        return self._done("UpdateConfig", change)

    def ReloadConfig(  # noqa: N802
        self, request: apb.ReloadConfigRequest, context: grpc.ServicerContext
    ) -> apb.ConfigChangeResponse:
        """Read the configuration file again and apply it."""
        who = self._authorize("ReloadConfig", context, request.reason)
        try:
            change = self.live.reload(who=who, source="ReloadConfig")
        except ConfigError as exc:
            self._invalid("ReloadConfig", context, exc)
        return self._done("ReloadConfig", change)

    def LoadCampus(  # noqa: N802
        self, request: apb.LoadCampusRequest, context: grpc.ServicerContext
    ) -> apb.LoadCampusResponse:
        """Load a campus newly onboarded in the maps directory, or load one again."""
        who = self._authorize("LoadCampus", context, request.reason)
        registry = self.campuses
        if registry is None:
            message = "this server has no campus registry"
            self._audit("admin_refused", "LoadCampus", who, "unimplemented", message)
            context.abort(grpc.StatusCode.UNIMPLEMENTED, message)
            raise AssertionError("abort returned")  # it raises
        campus_id = request.campus_id
        line: dict[str, object] = {
            "event": "campus_load",
            "rpc": "LoadCampus",
            "campus": campus_id,
            "reload": request.reload,
            "who": who,
        }
        try:
            outcome = registry.load(campus_id, reload=request.reload)
        except UnknownCampusError as exc:
            LOG.warning(json.dumps({**line, "result": "not_found"}))
            context.abort_with_status(
                rpc_status.to_status(unknown_campus_status(campus_id, exc.known))
            )
            raise AssertionError("abort_with_status returned") from None  # it raises
        except CampusFailedError as exc:
            LOG.warning(json.dumps({**line, "result": "failed", "error": exc.reason}))
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
            raise AssertionError("abort returned") from None  # it raises
        # a campus added now may become the default campus
        self.live.campuses = frozenset(registry.known())
        LOG.info(json.dumps({**line, "loaded": outcome.loaded, "detail": outcome.detail}))
        return apb.LoadCampusResponse(
            campus_id=outcome.campus_id, loaded=outcome.loaded, detail=outcome.detail
        )

    # ------------------------------------------------------------------ storm guard
    def _guard_campus(
        self, rpc: str, who: str, requested: str, context: grpc.ServicerContext
    ) -> tuple[str, Guards]:
        """The campus a guard call is about (empty: the default) and the guards, or abort
        (NOT_FOUND for a campus this server does not have), audited."""
        campus_id = requested or self.live.current.default_campus
        if self.guards is None:
            message = "this server has no storm guard"
            self._audit("admin_refused", rpc, who, "unimplemented", message, campus=campus_id)
            context.abort(grpc.StatusCode.UNIMPLEMENTED, message)
            raise AssertionError("abort returned")  # it raises
        known = sorted(self.campuses.known()) if self.campuses is not None else [campus_id]
        if campus_id not in known:
            status = unknown_campus_status(campus_id, known)
            self._audit("admin_refused", rpc, who, "not_found", status.message, campus=campus_id)
            context.abort_with_status(rpc_status.to_status(status))
            raise AssertionError("abort_with_status returned")  # it raises
        return campus_id, self.guards

    def ListHeldOrders(  # noqa: N802
        self, request: apb.ListHeldOrdersRequest, context: grpc.ServicerContext
    ) -> apb.ListHeldOrdersResponse:
        """A campus's guard: mode, level and the orders it holds, with the evidence."""
        who = self._authorize("ListHeldOrders", context)
        campus_id, guards = self._guard_campus("ListHeldOrders", who, request.campus_id, context)
        settings = self.live.current.guard
        mode = guards.mode_of(campus_id, settings)
        response = apb.ListHeldOrdersResponse(campus_id=campus_id, mode=GUARD_MODES.to_proto(mode))
        guard = guards.existing(campus_id)
        if guard is None:
            response.level_reason = "no batch seen yet"
            return response
        level, why, flagged = guard.status(settings)
        response.storm_level, response.level_reason = int(level), why
        response.flagged_orders = flagged
        for h in guard.held_orders():
            held = response.held.add(
                order_id=h.order_id,
                customer_id=h.customer,
                detector=h.detector.value,
                evidence=h.evidence,
                destination=h.destination,
                confirmed=h.confirmed,
                reviewed_by=h.reviewed_by,
            )
            held.placed_time.CopyFrom(timestamp_at(h.placed_s))
            held.held_time.CopyFrom(timestamp_at(h.held_s))
        return response

    def ReviewOrders(  # noqa: N802
        self, request: apb.ReviewOrdersRequest, context: grpc.ServicerContext
    ) -> apb.ReviewOrdersResponse:
        """Release or confirm held orders (and accounts)."""
        who = self._authorize("ReviewOrders", context, request.reason)
        campus_id, guards = self._guard_campus("ReviewOrders", who, request.campus_id, context)
        problems = []
        if request.verdict not in (apb.VERDICT_RELEASE, apb.VERDICT_CONFIRM):
            problems.append(("verdict", "must be VERDICT_RELEASE or VERDICT_CONFIRM"))
        if not request.order_ids and not request.customer_ids:
            problems.append(("order_ids", "name held orders or customer_ids"))
        if problems:
            detail = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                    for f, d in problems
                ]
            )
            message = "; ".join(f"{f}: {d}" for f, d in problems)
            self._audit("admin_refused", "ReviewOrders", who, "invalid", message, campus=campus_id)
            status = _status(code_pb2.INVALID_ARGUMENT, message, detail)
            context.abort_with_status(rpc_status.to_status(status))
            raise AssertionError("abort_with_status returned")  # it raises
        guard = guards.existing(campus_id)
        release = request.verdict == apb.VERDICT_RELEASE
        verdict = "release" if release else "confirm"
        if guard is None:  # no batch seen yet: nothing is held
            outcome = ReviewOutcome((), tuple(dict.fromkeys(request.order_ids)))
        else:
            judge = guard.release if release else guard.confirm
            outcome = judge(request.order_ids, request.customer_ids, who)
            self.metrics.show_held(campus_id, guard.held_by_state())
        if outcome.order_ids:
            self.metrics.guard_reviews.labels(campus_id, verdict).inc(len(outcome.order_ids))
        LOG.info(
            json.dumps(
                {
                    "event": "guard_review",
                    "rpc": "ReviewOrders",
                    "campus": campus_id,
                    "verdict": verdict,
                    "orders": list(outcome.order_ids),
                    "unknown_orders": list(outcome.unknown_order_ids),
                    "customers": list(request.customer_ids),
                    "who": who,
                }
            )
        )
        return apb.ReviewOrdersResponse(
            order_ids=outcome.order_ids,
            unknown_order_ids=outcome.unknown_order_ids,
            reviewed_by=who,
        )

    def SetGuardMode(  # noqa: N802
        self, request: apb.SetGuardModeRequest, context: grpc.ServicerContext
    ) -> apb.SetGuardModeResponse:
        """Set a campus's guard mode (in memory, until the next change or a restart)."""
        who = self._authorize("SetGuardMode", context, request.reason)
        campus_id, guards = self._guard_campus("SetGuardMode", who, request.campus_id, context)
        if not GUARD_MODES.has_proto(request.mode):
            names = ", ".join(apb.GuardMode.Name(GUARD_MODES.to_proto(m)) for m in GuardMode)
            detail = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field="mode", description=f"{request.mode} is not one of {names}"
                    )
                ]
            )
            message = f"mode: {request.mode} is not one of {names}"
            self._audit("admin_refused", "SetGuardMode", who, "invalid", message, campus=campus_id)
            status = _status(code_pb2.INVALID_ARGUMENT, message, detail)
            context.abort_with_status(rpc_status.to_status(status))
            raise AssertionError("abort_with_status returned")  # it raises
        mode = GUARD_MODES.from_proto(request.mode)
        settings = self.live.current.guard
        old = guards.set_mode(campus_id, mode, settings)
        self.metrics.show_guard_mode(campus_id, mode.value, [m.value for m in GuardMode])
        LOG.info(
            json.dumps(
                {
                    "event": "guard_mode",
                    "rpc": "SetGuardMode",
                    "campus": campus_id,
                    "old": old.value,
                    "new": mode.value,
                    "who": who,
                }
            )
        )
        return apb.SetGuardModeResponse(
            campus_id=campus_id,
            old_mode=GUARD_MODES.to_proto(old),
            mode=GUARD_MODES.to_proto(mode),
            changed_by=who,
        )

    def _audit(
        self, event: str, rpc: str, who: str, result: str, error: str, **fields: object
    ) -> None:
        """The audit line of a refused admin call (a warning, like every refusal)."""
        line = {"event": event, "rpc": rpc, "who": who, "result": result, "error": error}
        LOG.warning(json.dumps({**line, **fields}, default=str))

    def _done(self, rpc: str, change: ConfigChange) -> apb.ConfigChangeResponse:
        applied = change.changes and not change.dry_run
        self.metrics.config_updates.labels(rpc, "applied" if applied else "unchanged").inc()
        return change_response(change)

    def _invalid(self, rpc: str, context: grpc.ServicerContext, exc: ConfigError) -> NoReturn:
        self.metrics.config_updates.labels(rpc, "invalid").inc()
        detail = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=exc.key, description=exc.reason)
            ]
        )
        status = _status(code_pb2.INVALID_ARGUMENT, f"nothing applied: {exc}", detail)
        context.abort_with_status(rpc_status.to_status(status))
        raise AssertionError("abort_with_status returned")  # it raises
