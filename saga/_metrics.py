"""Prometheus metrics: the APIs' requests, the sagas' transitions and steps, the workers' metrics server.

APIs serve ``/metrics`` on their own port (never through the gateway). A Celery worker serves its
metrics when its ``*_WORKER_METRICS_PORT`` is set, from its main process, with prometheus_client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, one directory per worker), so that a worker run
with ``-P prefork`` sums its children (the default pool, threads, has none). An API run with
several uvicorn workers sums them the same way when that variable is set. Names and labels are
documented in docs/operations.md ("Metrics and alerts").
"""

import glob
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import redis
from celery.signals import worker_init, worker_process_shutdown, worker_ready
from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._names import Queue

log = logging.getLogger("saga.metrics")

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

# Seconds: a request takes milliseconds (a registration up to its wait), a saga seconds, a step
# that retries with backoff up to minutes.
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_SAGA_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

HTTP_REQUESTS = Counter("http_requests", "HTTP requests answered, by route template, method and status", ["route", "method", "status"])
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method",
    ["route", "method"],
    buckets=_REQUEST_BUCKETS,
)
SAGAS_STARTED = Counter("sagas_started", "Sagas started (committed with their outbox message), by kind", ["kind"])
SAGAS_COMPLETED = Counter("sagas_completed", "Sagas that passed their pivot (their outcome is final), by kind", ["kind"])
SAGAS_COMPENSATED = Counter("sagas_compensated", "Sagas whose compensation began (a step failed for good), by kind", ["kind"])
SAGAS_FAILED = Counter("sagas_failed", "Sagas that ended failed (compensation finished), by kind", ["kind"])
SAGA_DURATION = Histogram(
    "saga_duration_seconds", "From a saga's start to its end, by kind and final status", ["kind", "status"], buckets=_SAGA_BUCKETS
)
STEP_DURATION = Histogram(
    "saga_step_duration_seconds",
    "One run of a saga task in a worker, by step (task name for compensations) and outcome (done, retry, failed)",
    ["step", "outcome"],
    buckets=_SAGA_BUCKETS,
)
STEP_RETRIES = Counter("saga_step_retries", "Saga task runs that will be retried, by step and error class", ["step", "error"])
SAGA_REDRIVES = Counter(
    "saga_redrives", "Sagas the watchdog published again because they stopped moving, by kind and status", ["kind", "status"]
)


class RequestMetricsMiddleware:
    """Counts and times every HTTP request by its route template (``/v1/users/{user_id}``, not the id)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception becomes the error handler's 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            # The router sets the matched route on the scope; no route: one label for every unknown path.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            if route != "/metrics":
                HTTP_REQUESTS.labels(route, scope["method"], str(status)).inc()
                HTTP_REQUEST_DURATION.labels(route, scope["method"]).observe(time.perf_counter() - started)


def registry() -> CollectorRegistry:
    """What to expose: this process's metrics, or all processes' in multiprocess mode."""
    if not os.environ.get(MULTIPROCESS_DIR):
        return REGISTRY
    combined = CollectorRegistry()
    multiprocess.MultiProcessCollector(combined)  # type: ignore[no-untyped-call]  # untyped in prometheus_client
    return combined


def add_metrics(app: FastAPI) -> None:
    """Request metrics and ``GET /metrics`` (not in the OpenAPI docs; the gateway never routes it)."""
    app.add_middleware(RequestMetricsMiddleware)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry()), media_type=CONTENT_TYPE_LATEST)


def serve_metrics(port: int, address: str) -> None:
    """Metrics on their own HTTP port, from a thread of this process (relays, a worker's main process)."""
    start_http_server(port, addr=address, registry=registry())
    log.info("metrics on http://%s:%d/metrics", address, port)


# Counted once the transaction that made the transition commits: a rolled-back or redelivered
# no-op transition counts nothing.
_AFTER_COMMIT = "saga.metrics.after_commit"


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run ``action`` when the session's current transaction commits; forget it on rollback."""
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for action in session.info.pop(_AFTER_COMMIT, []):
        try:
            action()
        except Exception:  # a metric never fails a committed transition
            log.exception("metric update failed")


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)


def count_after_commit(session: Session, counter: Counter, *labels: str) -> None:
    after_commit(session, counter.labels(*labels).inc)


class QueueDepthCollector(Collector):
    """The messages waiting in each service's queue, read from Redis when Prometheus scrapes."""

    def __init__(self, broker_url: str) -> None:
        self.client = redis.Redis.from_url(broker_url, socket_connect_timeout=1, socket_timeout=1)

    def collect(self) -> Any:
        depth = GaugeMetricFamily("celery_queue_length", "Messages waiting in a Celery queue (Redis LLEN)", labels=["queue"])
        try:
            for queue in Queue:
                depth.add_metric([queue.value], float(self.client.llen(queue.value)))
        except redis.RedisError as exc:
            log.warning("queue depth not read: %r", exc)
            return
        yield depth


def serve_worker_metrics(where: Callable[[], tuple[int | None, str]]) -> None:
    """Serve this Celery worker's metrics at ``where()`` (port, address; no port: not at all), summed
    over its pool's children. ``where`` is called when the worker starts, not at import.

    Only a worker started from the command line (``celery worker``) serves them: the tests' in-process
    workers never do. PROMETHEUS_MULTIPROC_DIR must name this worker's own directory; files of earlier
    runs are removed at start, and a pool child's live gauges when it exits.
    """

    def clean(**_: object) -> None:
        port, _address = where()
        if port is None:
            return
        directory = os.environ.get(MULTIPROCESS_DIR)
        if not directory:
            raise SystemExit(f"refusing to start: the worker metrics port is set ({port}) but {MULTIPROCESS_DIR} is not")
        os.makedirs(directory, exist_ok=True)
        mine = f"_{os.getpid()}.db"
        for path in glob.glob(os.path.join(directory, "*.db")):
            if not path.endswith(mine):
                os.remove(path)

    def serve(**_: object) -> None:
        port, address = where()
        if port is not None:
            serve_metrics(port, address)

    def forget_child(pid: int | None = None, **_: object) -> None:
        if os.environ.get(MULTIPROCESS_DIR):
            multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]  # untyped in prometheus_client

    worker_init.connect(clean, weak=False)
    worker_ready.connect(serve, weak=False)
    worker_process_shutdown.connect(forget_child, weak=False)
