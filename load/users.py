"""Locust users over gRPC: a reusable :class:`GrpcUser` (gevent-compatible gRPC, every call
reported to locust's statistics) and :class:`DispatchUser`, an order backend replaying recorded
SolveRequests with a per-call deadline. Importing this module monkey-patches with gevent."""

from __future__ import annotations

import contextlib
import itertools
import random
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import grpc
import grpc.experimental.gevent as grpc_gevent
from google.protobuf.message import Message
from locust import User, constant_pacing, task
from locust.env import Environment
from locust.exception import LocustError

from api.codec import duration_of
from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from api.pb.campus_dispatch.v1 import dispatch_pb2_grpc as pb_grpc
from load.grpc_client import LocustInterceptor, open_channel
from load.slo import label_call

# gRPC's C core must cooperate with gevent's loop, as locust documents for gRPC users: after
# the standard library was patched (importing locust did that), before any channel exists.
grpc_gevent.init_gevent()

_CHANNELS: dict[tuple[int, type, str, int], grpc.Channel] = {}
_USER_IDS = itertools.count(1)


class GrpcUser(User):
    """A locust user with a gRPC stub whose every call lands in locust's statistics.

    Set ``stub_class``; the target is locust's ``--host`` (``host:port``, or
    ``ipv4:h1:p1,h2:p2`` for client-side round-robin over several servers). All users of a
    process and class share one channel per target (one HTTP/2 connection per server, like a
    real backend's client), and with it the round-robin over the servers.

    Attributes
    ----------
    stub_class
        The generated stub, e.g. ``DispatchServiceStub``.
    retry_unavailable
        Extra attempts for calls failed with UNAVAILABLE (0: none).
    """

    abstract = True
    stub_class: ClassVar[Any] = None
    retry_unavailable: ClassVar[int] = 0

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        if not self.host:
            raise LocustError("no target: pass --host HOST:PORT (or ipv4:H1:P1,H2:P2)")
        if self.stub_class is None:
            raise LocustError(f"{type(self).__name__}.stub_class is not set")
        key = (id(environment), type(self), self.host, self.retry_unavailable)
        channel = _CHANNELS.get(key)
        if channel is None:
            interceptor = LocustInterceptor(
                environment.events.request, labeller=type(self).name_call
            )
            channel = open_channel(
                self.host, interceptors=[interceptor], retry_unavailable=self.retry_unavailable
            )
            _CHANNELS[key] = channel
        self.stub = self.stub_class(channel)

    @classmethod
    def name_call(cls, method: str, response: Message | None, error: grpc.RpcError | None) -> str:
        """How a finished call is named in the statistics (here: its method name)."""
        return method


def close_channels() -> None:
    """Close every shared channel (end of a run in library mode)."""
    for channel in _CHANNELS.values():
        channel.close()
    _CHANNELS.clear()


class DispatchUser(GrpcUser):
    """An order backend: every ``pacing_s`` it sends the next recorded SolveRequest with the
    configured budget and a deadline of budget + ``deadline_margin_s``.

    Configure the class with :meth:`configure` before the run (the locustfile does it from
    its command line). Outcomes are reported under the names of :func:`load.slo.label_call`.
    """

    stub_class = pb_grpc.DispatchServiceStub
    requests: ClassVar[Sequence[pb.SolveRequest]] = ()
    budget_s: ClassVar[float] = 0.2
    deadline_margin_s: ClassVar[float] = 0.5
    pacing_s: ClassVar[float] = 2.0
    wait_time = constant_pacing(2.0)

    @classmethod
    def name_call(cls, method: str, response: Message | None, error: grpc.RpcError | None) -> str:
        """Solve calls by outcome (see :func:`load.slo.label_call`)."""
        return label_call(method, response, error)

    @classmethod
    def configure(
        cls,
        requests: Sequence[pb.SolveRequest],
        *,
        budget_s: float,
        pacing_s: float = 2.0,
        deadline_margin_s: float = 0.5,
        retry_unavailable: int = 0,
    ) -> None:
        """Set the requests to replay (their ``time_budget`` is set to ``budget_s``), the
        pacing of each user and the deadline margin."""
        if not requests:
            raise ValueError("requests: at least one recorded request is needed")
        for name, value in (("budget_s", budget_s), ("pacing_s", pacing_s)):
            if not value > 0:
                raise ValueError(f"{name}={value!r}: must be > 0")
        if deadline_margin_s < 0:
            raise ValueError(f"deadline_margin_s={deadline_margin_s!r}: must be >= 0")
        prepared = []
        for request in requests:
            copy = pb.SolveRequest()
            copy.CopyFrom(request)
            copy.time_budget.CopyFrom(duration_of(budget_s))
            prepared.append(copy)
        cls.requests = prepared
        cls.budget_s = budget_s
        cls.pacing_s = pacing_s
        cls.deadline_margin_s = deadline_margin_s
        cls.retry_unavailable = retry_unavailable
        cls.wait_time = constant_pacing(pacing_s)

    def on_start(self) -> None:
        """Pick a client id and a starting request; spread first calls over one pacing."""
        if not self.requests:
            raise LocustError("DispatchUser.configure() was not called: no requests to send")
        user = next(_USER_IDS)
        self.metadata = (("client-id", f"locust-{user}"),)
        self.cursor = random.randrange(len(self.requests))
        time.sleep(random.uniform(0.0, self.pacing_s))  # gevent-patched: yields

    @task
    def solve(self) -> None:
        """Send the next recorded request (the interceptor reports the outcome)."""
        request = self.requests[self.cursor % len(self.requests)]
        self.cursor += 1
        # a failed call is already reported (as rejected, or as an error with its status code)
        with contextlib.suppress(grpc.RpcError):
            self.stub.Solve(
                request, timeout=self.budget_s + self.deadline_margin_s, metadata=self.metadata
            )
