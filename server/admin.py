"""The AdminService servicer: GetConfig, UpdateConfig and ReloadConfig over the live
configuration and LoadCampus over the campus registry, behind the admin bearer token, every
call logged with who asked."""

from __future__ import annotations

import json
import logging
import tomllib
from collections.abc import Mapping
from typing import Any, NoReturn

import grpc
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status

from api.codec import timestamp_at
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
    ) -> None:
        self.live = live
        self.auth = auth
        self.metrics = metrics
        self.campuses = campuses

    def _authorize(self, rpc: str, context: grpc.ServicerContext, reason: str = "") -> str:
        """The caller's description for the log (with ``reason``), or abort with
        UNAUTHENTICATED."""
        metadata = {k: str(v) for k, v in (context.invocation_metadata() or ())}
        try:
            name = self.auth.check(metadata)
        except AuthError as exc:
            who = caller(metadata, context.peer())
            LOG.warning(
                json.dumps({"event": "admin_denied", "rpc": rpc, "who": who, "error": str(exc)})
            )
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
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "this server has no campus registry")
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
