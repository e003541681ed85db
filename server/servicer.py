"""The DispatchService servicer: admit → validate → convert → one solve → answer, thin over the
domain functions, with status codes that mean something and an access log line per call."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from api.codec import duration_of, seconds_of
from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from api.pb.campus_dispatch.v1 import dispatch_pb2_grpc as pb_grpc
from campus_maps import Campus, UnknownCampusError
from server.admission import Admission, RejectedError
from server.campuses import CampusFailedError, CampusLoadingError, CampusRegistry
from server.config import ServerConfig
from server.convert import (
    Conversion,
    guard_orders,
    held_plan,
    problem_from_request,
    response_from_plan,
)
from server.live import LiveConfig
from server.metrics import Metrics
from server.validate import MAX_TEXT_BYTES, InvalidRequestError, Violation, validate_request
from solver.plan import Plan, ShedReason
from solver.runtime.dispatch import solve
from solver.runtime.workers import SolverPool
from storm import Action, GuardMode, GuardReview, Guards

#: Seconds per order kept back from the solve for building the answer (measured 12 us).
ANSWER_PER_ORDER_S = 1.5e-5
#: Shed reasons that count as worker failures towards the circuit breaker.
WORKER_FAILURES = (ShedReason.WORKER_OVERRUN, ShedReason.WORKER_CRASHED)

ACCESS_LOG = logging.getLogger("campus_dispatch.access")
LOG = logging.getLogger("campus_dispatch.server")


def _status(code: int, message: str, *details: object) -> status_pb2.Status:
    status = status_pb2.Status(code=code, message=message)
    for detail in details:
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    return status


def bad_request(violations: list[Violation]) -> status_pb2.Status:
    """INVALID_ARGUMENT with a google.rpc.BadRequest listing every bad field."""
    detail = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in violations
        ]
    )
    return _status(code_pb2.INVALID_ARGUMENT, str(InvalidRequestError(violations)), detail)


def _rejected_status(rejected: RejectedError) -> status_pb2.Status:
    """RESOURCE_EXHAUSTED with the retry hint as a ``google.rpc.RetryInfo`` detail."""
    retry = error_details_pb2.RetryInfo()
    retry.retry_delay.CopyFrom(duration_of(rejected.retry_after_s))
    return _status(code_pb2.RESOURCE_EXHAUSTED, str(rejected), retry)


def _loading_status(loading: CampusLoadingError) -> status_pb2.Status:
    """UNAVAILABLE (retry later) with the retry hint as a ``google.rpc.RetryInfo`` detail."""
    retry = error_details_pb2.RetryInfo()
    retry.retry_delay.CopyFrom(duration_of(loading.retry_after_s))
    return _status(code_pb2.UNAVAILABLE, str(loading), retry)


def unknown_campus_status(campus_id: str, known: list[str]) -> status_pb2.Status:
    """NOT_FOUND naming the campuses this server has."""
    return _status(
        code_pb2.NOT_FOUND,
        f"unknown campus {campus_id!r}; this server has: {', '.join(known)}",
    )


def clip(text: str, limit: int = MAX_TEXT_BYTES) -> str:
    """``text`` cut to ``limit`` characters for a log line (a request's text is not yet checked
    when its access line is started)."""
    return text if len(text) <= limit else f"{text[:limit]}...(+{len(text) - limit})"


class DispatchServicer(pb_grpc.DispatchServiceServicer):
    """Solve and ListCampuses over the campuses of the registry and the solver worker pool.

    Each call reads the live configuration once (:attr:`LiveConfig.current`) and uses that
    object to the end, so an admin change applies from the next call on, whole.
    """

    def __init__(
        self,
        config: LiveConfig,
        campuses: CampusRegistry,
        pool: SolverPool,
        admission: Admission,
        metrics: Metrics,
        guards: Guards,
    ) -> None:
        self.live = config
        self.registry = campuses
        self.pool = pool
        self.admission = admission
        self.metrics = metrics
        self.guards = guards

    @property
    def config(self) -> ServerConfig:
        """The configuration in force now."""
        return self.live.current

    @property
    def campuses(self) -> Mapping[str, Campus]:
        """The campuses loaded now, by id (others load on their first request)."""
        return self.registry.loaded()

    # ----------------------------------------------------------------- Solve
    def Solve(self, request: pb.SolveRequest, context: grpc.ServicerContext) -> pb.SolveResponse:  # noqa: N802
        """Plan routes for the request's orders and riders."""
        started = time.perf_counter()
        config = self.live.current  # this call's configuration, whatever changes meanwhile
        log: dict[str, object] = {
            "rpc": "Solve",
            "request_id": clip(request.request_id),
            "campus": clip(request.campus_id),
            "orders": len(request.orders),
            "riders": len(request.riders),
        }
        metadata = dict(context.invocation_metadata() or ())
        client = clip(str(metadata.get("client-id") or context.peer()))
        log["client"] = client
        code = grpc.StatusCode.OK
        engine = "none"
        try:
            self.admission.enter(client)
        except RejectedError as rejected:
            self._reject(context, rejected, log, started)
            return pb.SolveResponse()  # not reached: abort raises
        self.metrics.inflight.inc()
        try:
            response = self._solve(request, context, started, log, config)
            engine = pb.Engine.Name(response.stats.engine).lower()
            return response
        except RejectedError as rejected:  # too many greedy plans in flight
            code = grpc.StatusCode.RESOURCE_EXHAUSTED
            self.metrics.rejected.labels(rejected.reason).inc()
            log.update(status=code.name, error=str(rejected))
            context.abort_with_status(rpc_status.to_status(_rejected_status(rejected)))
            raise  # not reached
        except _AbortError as abort:
            code = abort.code
            self.metrics.rejected.labels(abort.label).inc()
            log.update(status=code.name, error=abort.status.message)
            context.abort_with_status(rpc_status.to_status(abort.status))
            raise  # not reached
        except Exception as exc:  # never let a request take the server down
            if isinstance(exc, grpc.RpcError) or type(exc).__name__ == "_AbortionException":
                raise
            code = grpc.StatusCode.INTERNAL
            LOG.exception("Solve failed for request %s", request.request_id)
            log.update(status=code.name, error=repr(exc))
            context.abort(code, f"internal error: {type(exc).__name__}: {exc}")
            raise  # not reached
        finally:
            self.admission.leave()
            self.metrics.inflight.dec()
            elapsed = time.perf_counter() - started
            if code is grpc.StatusCode.OK and "status" not in log:
                self.metrics.latency.labels(engine).observe(elapsed)
                budget_ms = log.get("budget_ms")
                if isinstance(budget_ms, float) and budget_ms > 0:
                    self.metrics.budget_ratio.labels(engine).observe(elapsed * 1000 / budget_ms)
                self.metrics.orders.inc(len(request.orders))
                log["status"] = "OK"
            self.metrics.requests.labels(str(log.get("status", code.name))).inc()
            log["latency_ms"] = round(elapsed * 1000, 2)
            ACCESS_LOG.info(json.dumps(log))

    def _reject(
        self,
        context: grpc.ServicerContext,
        rejected: RejectedError,
        log: dict[str, object],
        started: float,
    ) -> None:
        status = _rejected_status(rejected)
        self.metrics.rejected.labels(rejected.reason).inc()
        self.metrics.requests.labels("RESOURCE_EXHAUSTED").inc()
        log.update(
            status="RESOURCE_EXHAUSTED",
            error=str(rejected),
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        ACCESS_LOG.info(json.dumps(log))
        context.abort_with_status(rpc_status.to_status(status))

    def _solve(
        self,
        request: pb.SolveRequest,
        context: grpc.ServicerContext,
        started: float,
        log: dict[str, object],
        config: ServerConfig,
    ) -> pb.SolveResponse:
        now = time.time()  # the clock of a request without "now", for checks and conversion
        violations = validate_request(request, config, now=now)
        if violations:
            raise _AbortError(grpc.StatusCode.INVALID_ARGUMENT, "invalid", bad_request(violations))
        campus_id = request.campus_id or config.default_campus
        try:
            campus = self.registry.get(campus_id)
        except UnknownCampusError as unknown:
            raise _AbortError(
                grpc.StatusCode.NOT_FOUND,
                "not_found",
                unknown_campus_status(campus_id, unknown.known),
            ) from None
        except CampusLoadingError as loading:
            raise _AbortError(
                grpc.StatusCode.UNAVAILABLE, "campus_loading", _loading_status(loading)
            ) from None
        except CampusFailedError as failed:
            raise _AbortError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "campus_failed",
                _status(code_pb2.FAILED_PRECONDITION, str(failed)),
            ) from None
        params = config.solver
        budget = (
            seconds_of(request.time_budget)
            if request.HasField("time_budget")
            else params.default_budget_s
        )
        remaining = context.time_remaining()
        if remaining is not None:
            budget = min(budget, remaining - config.deadline_margin_s)
        if budget <= 0:
            raise _AbortError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                "deadline",
                _status(code_pb2.DEADLINE_EXCEEDED, "the deadline leaves no time to solve"),
            )
        try:
            conversion = problem_from_request(request, campus, config, now=now)
        except InvalidRequestError as invalid:
            raise _AbortError(
                grpc.StatusCode.INVALID_ARGUMENT, "invalid", bad_request(invalid.violations)
            ) from None
        review = self._review(campus_id, request, conversion, config)
        held = review.ids(Action.QUARANTINE) if review else frozenset()
        deferred = review.ids(Action.DEPRIORITISE) if review else frozenset()
        # the answer is built after the solve: 12 ms for 1,000 orders, 24 ms for 2,000
        answer_s = ANSWER_PER_ORDER_S * len(request.orders)
        solve_budget = budget - (time.perf_counter() - started) - answer_s
        solve_started = time.perf_counter()
        plan = self._plan(conversion.without(held), solve_budget, config, deferred)
        if review is not None:
            plan = held_plan(plan, review, conversion.spec.orders)
        solve_s = time.perf_counter() - solve_started
        response = response_from_plan(
            plan,
            conversion,
            request,
            solve_s=solve_s,
            total_s=time.perf_counter() - started,
            review=review,
        )
        for u in plan.unassigned:
            self.metrics.unassigned.labels(u.reason.value).inc()
        if plan.stats.shed is not None:
            self.metrics.shed.labels(plan.stats.shed.reason.value).inc()
        if plan.stats.reassigned:
            self.metrics.reassigned.labels(campus_id).inc(plan.stats.reassigned)
        log.update(
            campus=campus_id,
            engine=plan.stats.engine.value,
            shed=None if plan.stats.shed is None else plan.stats.shed.reason.value,
            shed_reason=plan.stats.shed_reason,
            zones=plan.stats.zones,
            budget_ms=round(budget * 1000, 1),
            matrix_ms=round(conversion.matrix_s * 1000, 2),
            unassigned=len(plan.unassigned),
            reassigned=plan.stats.reassigned,
        )
        if review is not None:
            log.update(
                storm_level=int(review.level),
                flagged=len(review.verdicts),
                held=len(held),
                deprioritised=len(deferred),
            )
        return response

    def _review(
        self,
        campus_id: str,
        request: pb.SolveRequest,
        conversion: Conversion,
        config: ServerConfig,
    ) -> GuardReview | None:
        """The storm guard's reading of the batch, counted in the metrics; ``None`` (the batch
        is dispatched unguarded, logged and counted as a bug) if the guard fails."""
        try:
            orders = guard_orders(request, conversion.now)
            review = self.guards.review(campus_id, orders, conversion.now, config.guard)
            guard = self.guards.existing(campus_id)
            held = guard.held_by_state() if guard is not None else {}
        except Exception:
            LOG.exception("storm guard failed for request %s", request.request_id)
            self.metrics.guard_errors.inc()
            return None
        for detector, count in review.newly_flagged.items():
            self.metrics.guard_flagged.labels(campus_id, detector.value).inc(count)
        self.metrics.show_guard(
            campus_id,
            int(review.level),
            held,
            review.volume.counted_ratio(config.guard),
            review.mode.value,
            [m.value for m in GuardMode],
        )
        return review

    def _plan(
        self,
        conversion: Conversion,
        budget_s: float,
        config: ServerConfig,
        deferred: frozenset[str] = frozenset(),
    ) -> Plan:
        """One call to the solver's runtime, which owns the rest (partitioning, the workers,
        shedding, fallbacks): the breaker's decision goes in, typed; worker failures come out,
        typed, to the breaker. Greedy plans computed here for a shed request hold a place
        under ``max_greedy_inflight`` (RESOURCE_EXHAUSTED past it). ``deferred`` orders (the
        storm guard's suspicious ones) get only the riders left over.

        The solver parameters go to the workers with the job, so workers never hold a stale
        copy of them."""
        plan = solve(
            conversion.spec,
            config.solver,
            budget_s=max(budget_s, 0.001),
            pool=self.pool,
            shed=self.admission.breaker_shed(),
            shedding=config.shedding,
            greedy_gate=self.admission.greedy_slot,
            deferred=deferred,
        )
        if plan.stats.shed is not None and plan.stats.shed.reason in WORKER_FAILURES:
            self.admission.record_failure()
        return plan

    # ----------------------------------------------------------- ListCampuses
    def ListCampuses(  # noqa: N802
        self, request: pb.ListCampusesRequest, context: grpc.ServicerContext
    ) -> pb.ListCampusesResponse:
        """The campuses this server plans on, loaded or not (bounds only when known)."""
        default = self.config.default_campus
        response = pb.ListCampusesResponse()
        for summary in self.registry.summaries():
            entry = response.campuses.add(
                id=summary.id,
                name=summary.name,
                is_default=summary.id == default,
                loaded=summary.loaded,
            )
            b = summary.bounds
            if b is not None:
                entry.southwest.CopyFrom(pb.LatLng(lat=b[0], lng=b[1]))
                entry.northeast.CopyFrom(pb.LatLng(lat=b[2], lng=b[3]))
        return response


class _AbortError(Exception):
    """End the RPC with this status (raised inside the servicer, turned into an abort)."""

    def __init__(self, code: grpc.StatusCode, label: str, status: status_pb2.Status) -> None:
        self.code, self.label, self.status = code, label, status
        super().__init__(status.message)
