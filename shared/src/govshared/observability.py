"""Request ids, W3C trace context, JSON logs and Prometheus metrics, as one pure ASGI middleware."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import os
import socket
import sys
import threading
import time
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    make_wsgi_app,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from govshared.db import no_transaction_open

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
traceparent_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "traceparent", default=None
)

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id and trace id of the current request."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        """Render the record."""
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        traceparent = traceparent_var.get()
        if traceparent:
            entry["trace_id"] = traceparent.split("-")[1]
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(*, service: str, level: str = "INFO", json_logs: bool = True) -> None:
    """Route the root logger (and uvicorn's) to stdout, as JSON unless told otherwise."""
    handler = logging.StreamHandler(sys.stdout)
    if json_logs:
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # The middleware writes its own structured access log.
    logging.getLogger("uvicorn.access").disabled = True


def _new_traceparent(parent: str | None, random: bytes | None = None) -> str:
    """Continue the caller's W3C trace, or start one (``random``: 24 random bytes to use)."""
    random = random or os.urandom(24)
    span = random[16:24].hex()
    if parent:
        parts = parent.split("-")
        if len(parts) == 4 and len(parts[1]) == 32:
            return f"00-{parts[1]}-{span}-{parts[3]}"
    return f"00-{random[:16].hex()}-{span}-01"


class ObservabilityMiddleware:
    """Sets the request id and trace context, logs each request, and records metrics."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service
        self.access = logging.getLogger("access")
        # The metrics' children per label values: ``labels()`` checks and locks on every call.
        self._counters: dict[tuple[str, str, str], Any] = {}
        self._latencies: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = parent = ""
        for name, value in scope.get("headers") or ():
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
            elif name == b"traceparent":
                parent = value.decode("latin-1")
        # One read of the system's randomness for the request id and the trace and span ids.
        random = os.urandom(36)
        request_id = incoming if 0 < len(incoming) <= 128 else random[24:].hex()
        traceparent = _new_traceparent(parent or None, random)
        scope.setdefault("state", {})["request_id"] = request_id
        rid_token = request_id_var.set(request_id)
        tp_token = traceparent_var.set(traceparent)
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_path = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self._record(method, route_path, status, elapsed)
            if route_path not in ("/metrics", "/healthz", "/readyz") and self.access.isEnabledFor(
                logging.INFO
            ):
                self.access.info(
                    "request",
                    extra={
                        "method": method,
                        "path": scope["path"],
                        "route": route_path,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            request_id_var.reset(rid_token)
            traceparent_var.reset(tp_token)

    def _record(self, method: str, route: str, status: int, elapsed: float) -> None:
        """Count the request and observe its latency."""
        key = (method, route, str(status))
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = HTTP_REQUESTS.labels(self.service, *key)
        counter.inc()
        latency = self._latencies.get(key[:2])
        if latency is None:
            latency = self._latencies[key[:2]] = HTTP_LATENCY.labels(self.service, method, route)
        latency.observe(elapsed)


class Heartbeat:
    """A worker's sign of life: its event loop marks it every ``beat_seconds``; it is stale once
    ``stale_after`` seconds pass without a mark (the loop blocked, or gone)."""

    def __init__(self, *, beat_seconds: float = 5.0, stale_after: float = 60.0) -> None:
        self.beat_seconds = beat_seconds
        self.stale_after = stale_after
        self._last = time.monotonic()
        self.task: asyncio.Task[None] | None = None

    def fresh(self) -> bool:
        """Marked within ``stale_after`` seconds."""
        return time.monotonic() - self._last <= self.stale_after

    async def beat(self) -> None:
        """Mark until cancelled."""
        while True:
            self._last = time.monotonic()
            await asyncio.sleep(self.beat_seconds)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds: not logged."""


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _ThreadingWSGIServer6(_ThreadingWSGIServer):
    address_family = socket.AF_INET6  # a host such as "::" (IPv6-only clusters)


def serve_worker_metrics(*, host: str, port: int, heartbeat: Heartbeat | None = None) -> Heartbeat:
    """Expose a worker process's metrics (outbox backlog, failures, timers) for Prometheus, and
    ``/livez`` for its liveness probe.

    Web replicas serve ``/metrics`` through the app; a worker has no app, so it gets a small HTTP
    server on a thread. ``/livez`` answers 200 while the worker's event loop marks its heartbeat
    (a task started here, on the running loop) and 503 once the loop has not for a minute: a loop
    blocked or dead answers nothing else, and Kubernetes then restarts the pod (deploy/k8s). Every
    other path is the metrics. Port 0 turns the server off.
    """
    heartbeat = heartbeat or Heartbeat()
    with contextlib.suppress(RuntimeError):  # no loop running: nothing to watch
        heartbeat.task = asyncio.get_running_loop().create_task(heartbeat.beat())
    if not port:
        return heartbeat
    metrics = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/livez":
            alive = heartbeat.fresh()
            start_response(
                "200 OK" if alive else "503 Service Unavailable",
                [("Content-Type", "text/plain; charset=utf-8")],
            )
            return [b"alive\n" if alive else b"event loop stalled\n"]
        return metrics(environ, start_response)

    server_class = _ThreadingWSGIServer6 if ":" in host else _ThreadingWSGIServer
    server = make_server(host, port, app, server_class, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()
    return heartbeat


async def metrics_endpoint(_request: Request) -> Response:
    """Prometheus exposition; aggregates worker processes when PROMETHEUS_MULTIPROC_DIR is set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _propagate(request: httpx.Request) -> None:
    request_id = request_id_var.get()
    if request_id and "x-request-id" not in request.headers:
        request.headers["X-Request-ID"] = request_id
    traceparent = traceparent_var.get()
    if traceparent and "traceparent" not in request.headers:
        request.headers["traceparent"] = _new_traceparent(traceparent)


async def _no_transaction_open(request: httpx.Request) -> None:
    no_transaction_open(f"{request.method} {request.url.copy_with(query=None)}")


def make_http_client(*, timeout: float = 5.0, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client that forwards the request id and trace context, with a firm timeout, and
    refuses to send while the current request's database transaction is open
    (``govshared.db.no_transaction_open``)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)),
        event_hooks={"request": [_no_transaction_open, _propagate]},
        **kwargs,
    )
