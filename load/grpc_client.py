"""The gRPC side of a load test: a client interceptor that reports every unary call to a
locust-style request event, and channels with client-side round-robin over several servers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import grpc
from google.protobuf.message import Message

#: Full name of the dispatch service (for the retry policy of its methods).
DISPATCH_SERVICE = "campus_dispatch.v1.DispatchService"


class RequestEvent(Protocol):
    """What the interceptor reports to: locust's ``environment.events.request`` hook."""

    def fire(self, **kwargs: Any) -> Any:
        """Report one call (locust's request event keywords)."""
        ...


#: Names a finished call in the report: (method, response or None, error or None) -> name.
Labeller = Callable[[str, Message | None, grpc.RpcError | None], str]


def method_name(full_method: str | bytes) -> str:
    """The short method name of ``/package.Service/Method`` (``Method``)."""
    text = full_method.decode() if isinstance(full_method, bytes) else full_method
    return text.rsplit("/", 1)[-1] or text


class LocustInterceptor(grpc.UnaryUnaryClientInterceptor):
    """Reports every unary-unary call to ``request_event`` (locust's request event).

    Each report carries ``request_type`` (``"grpc"``), ``name`` (the short method name, or what
    ``labeller`` makes of the outcome), ``response_time`` in milliseconds (from the call to the
    answer or the error), ``response_length`` (bytes of the answer), ``response`` and
    ``exception`` (the :class:`grpc.RpcError`, ``None`` on success). The call itself is
    returned unchanged: the caller still gets the answer or the error.

    Parameters
    ----------
    request_event
        Anything with ``fire(**kwargs)``, normally ``environment.events.request``.
    labeller
        Optional: the name to report for a finished call.
    """

    def __init__(self, request_event: RequestEvent, *, labeller: Labeller | None = None) -> None:
        self.request_event = request_event
        self.labeller = labeller

    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Message], Any],
        client_call_details: grpc.ClientCallDetails,
        request: Message,
    ) -> Any:
        """Run the call, wait for its outcome, report it, return the call."""
        started = time.perf_counter()
        call = continuation(client_call_details, request)
        response: Message | None = None
        error: grpc.RpcError | None = None
        try:
            response = call.result()
        except grpc.RpcError as exc:
            error = exc
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        method = method_name(client_call_details.method)
        name = self.labeller(method, response, error) if self.labeller else method
        self.request_event.fire(
            request_type="grpc",
            name=name,
            response_time=elapsed_ms,
            response_length=response.ByteSize() if response is not None else 0,
            response=response,
            context={"method": method},
            exception=error,
        )
        return call


def cluster_target(addresses: Sequence[str]) -> str:
    """A gRPC target for one address (``host:port``) or several (``ipv4:h1:p1,h2:p2``).

    Several addresses use the ``ipv4`` resolver, which takes a comma-separated list: with the
    ``round_robin`` policy of :func:`open_channel`, calls then alternate between them.
    """
    if not addresses:
        raise ValueError("addresses: at least one host:port is needed")
    for address in addresses:
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"addresses: {address!r} is not host:port")
    if len(addresses) == 1:
        return addresses[0]
    return "ipv4:" + ",".join(addresses)


def service_config(*, round_robin: bool = True, retry_unavailable: int = 0) -> str:
    """gRPC service config (JSON): client-side round-robin, and optionally a retry policy that
    sends a call failed with UNAVAILABLE (its server went away) to another server, up to
    ``retry_unavailable`` more attempts. Solve is a pure function of its request, so a retry is
    safe."""
    if retry_unavailable < 0:
        raise ValueError(f"retry_unavailable={retry_unavailable}: must be >= 0")
    config: dict[str, Any] = {}
    if round_robin:
        config["loadBalancingConfig"] = [{"round_robin": {}}]
    if retry_unavailable:
        config["methodConfig"] = [
            {
                "name": [{"service": DISPATCH_SERVICE}],
                "retryPolicy": {
                    "maxAttempts": retry_unavailable + 1,
                    "initialBackoff": "0.02s",
                    "maxBackoff": "0.2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    return json.dumps(config)


def open_channel(
    target: str,
    *,
    interceptors: Sequence[grpc.UnaryUnaryClientInterceptor] = (),
    round_robin: bool = True,
    retry_unavailable: int = 0,
) -> grpc.Channel:
    """An insecure channel to ``target`` (see :func:`cluster_target`) with the service config
    of :func:`service_config`, wrapped in ``interceptors``."""
    config = service_config(round_robin=round_robin, retry_unavailable=retry_unavailable)
    options = [
        ("grpc.service_config", config),
        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ]
    channel = grpc.insecure_channel(target, options=options)
    return grpc.intercept_channel(channel, *interceptors) if interceptors else channel
