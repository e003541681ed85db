"""The edge of every unary RPC: bytes that do not decode as the method's request message (invalid
UTF-8 in a string, a truncated message) are answered INVALID_ARGUMENT, counted and logged, where
gRPC alone would answer INTERNAL before any servicer code runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import grpc
from grpc_status import rpc_status

from server.metrics import Metrics
from server.servicer import ACCESS_LOG, bad_request
from server.validate import Violation

#: The Solve method's full name (its refusals are counted in the dispatch metrics).
SOLVE_METHOD = "/campus_dispatch.v1.DispatchService/Solve"


class UndecodableRequest:
    """What the lenient deserializer hands on instead of a message it could not parse."""

    def __init__(self, method: str, error: Exception, size: int) -> None:
        self.method, self.error, self.size = method, error, size

    def violation(self) -> Violation:
        """The bad field: the request as a whole (the parser does not say which field)."""
        return Violation(
            "request",
            f"{self.size} bytes that are not a valid request message of {self.method} "
            f"({self.error}); strings must be valid UTF-8",
        )


class DecodeGuard(grpc.ServerInterceptor):
    """Wraps every unary-unary handler with a deserializer that cannot fail."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None or handler.request_deserializer is None:
            return handler
        parse, behaviour, method = handler.request_deserializer, handler.unary_unary, details.method

        def lenient(data: bytes) -> Any:
            try:
                return parse(data)
            except Exception as exc:  # DecodeError, or anything else the parser raises
                return UndecodableRequest(method, exc, len(data))

        def run(request: Any, context: grpc.ServicerContext) -> Any:
            if isinstance(request, UndecodableRequest):
                self._refuse(request, context)
            return behaviour(request, context)

        return grpc.unary_unary_rpc_method_handler(
            run, request_deserializer=lenient, response_serializer=handler.response_serializer
        )

    def _refuse(self, request: UndecodableRequest, context: grpc.ServicerContext) -> None:
        status = bad_request([request.violation()])
        if request.method == SOLVE_METHOD:
            self.metrics.requests.labels("INVALID_ARGUMENT").inc()
            self.metrics.rejected.labels("invalid").inc()
        line = {
            "rpc": request.method.rsplit("/", 1)[-1],
            "status": "INVALID_ARGUMENT",
            "error": status.message,
            "bytes": request.size,
        }
        ACCESS_LOG.info(json.dumps(line))
        context.abort_with_status(rpc_status.to_status(status))
