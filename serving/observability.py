"""Per-request observation: a request id on every response and log line, Prometheus metrics, an access log."""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.request_context import request_id

log = logging.getLogger("trajectory.access")

REQUESTS = Counter("trajectory_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram(
    "trajectory_http_request_duration_seconds", "Time to answer an HTTP request", ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
DEGRADED = Gauge("trajectory_degraded", "1 while this worker serves a fallback or misses a model",
                 multiprocess_mode="livemax")
MODEL_INFO = Gauge("trajectory_model_info", "The model this worker serves (value 1)", ["name", "version"],
                   multiprocess_mode="livemax")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"  # unmatched paths must not explode the label set


class RequestObserver:
    """Pure ASGI middleware (no body buffering): cheap enough for every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _SAFE_ID.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_of(scope)
            method = str(scope.get("method", ""))
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route).observe(elapsed)
            principal: Any = (scope.get("state") or {}).get("principal")
            log.info("request", extra={
                "request_id": rid, "method": method, "route": route, "path": scope.get("path"), "status": status,
                "duration_ms": round(elapsed * 1000, 2), "key_id": getattr(principal, "key_id", None),
            })
            request_id.reset(token)


def metrics_text() -> tuple[bytes, str]:
    """The exposition of this process, or of all worker processes when they share a multiprocess dir."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
