"""The Celery app factory shared by every service's API and worker."""

import logging
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from celery import Celery
from celery.signals import task_revoked, worker_process_init
from kombu import Queue as KombuQueue  # type: ignore[attr-defined]  # kombu re-exports it lazily

from ._names import Queue, queue_of

# Kept above the longest task run and the longest retry countdown, so that Redis does not
# redeliver tasks that are merely waiting; stuck sagas are re-driven by the watchdog instead.
VISIBILITY_TIMEOUT_S = 900

log = logging.getLogger("saga")


def _report_expired(sender: Any = None, request: Any = None, expired: bool = False, **_: object) -> None:
    # A saga message past its deadline (saga.SAGA_DEADLINE) is discarded unrun; the watchdog marks the saga.
    if expired:
        args = getattr(request, "args", None) or ("?",)
        log.error(
            "saga=%s task=%s id=%s expired: discarded unrun (the saga passed its deadline)",
            args[0],
            getattr(sender, "name", sender),
            getattr(request, "id", None),
        )


task_revoked.connect(_report_expired, weak=False)


def _route(name: str, args: object, kwargs: object, options: object, task: object = None, **kw: object) -> dict[str, str] | None:
    try:
        return {"queue": queue_of(name).value}
    except ValueError:
        return None  # Celery's own tasks (celery.chain, ...) keep the default route


def create_celery_app(name: str, broker_url: str | Callable[[], str]) -> Celery:
    """A Celery app wired for at-least-once delivery on per-service queues.

    ``broker_url`` may be a function: a worker's module-level app then reads it only when Celery
    first needs its configuration (the worker starting, a task sent), not when the module is
    imported. No result backend: the saga's state lives in the users database, not in Celery.
    """
    if callable(broker_url):
        app = Celery(name, set_as_current=False)
        # Lazy: Celery calls a callable default when it loads its configuration (Celery.add_defaults).
        app.add_defaults(lambda: {"broker_url": broker_url()})
    else:
        app = Celery(name, broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Threads, not prefork: every task waits on PostgreSQL, Redis or SMTP, and handing each
        # message to a forked child and back cost more CPU than the task (docs/benchmarks.md).
        worker_pool="threads",
        task_queues=[KombuQueue(q.value) for q in Queue],  # type: ignore[no-untyped-call]  # kombu has no annotations
        task_routes=(_route,),
        task_default_queue=Queue.USERS.value,
        task_ignore_result=True,
        # Flower shows a task from when a worker received it; a "sent" event per publish cost
        # every producer (and Flower) a message more per task.
        task_send_sent_event=False,
        worker_send_task_events=True,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
        broker_connection_timeout=2,
        # A worker publishes the next step of a chain after its task succeeded. If that publish
        # fails, Celery counts the task as failed and fires its errbacks: a Redis restart would
        # compensate a step that succeeded. So workers keep trying for about two minutes. (The
        # API and the relay publish with retry=False: their outbox row is the retry.)
        task_publish_retry_policy={"max_retries": 60, "interval_start": 0.5, "interval_step": 0.5, "interval_max": 2},
    )
    return app


T = TypeVar("T")


def per_worker_process(factory: Callable[[], T]) -> Callable[[], T]:
    """``factory()``, made once per process and again in each forked pool child (a database
    connection pool must not cross a fork)."""
    made = cache(factory)

    def forget(**_: object) -> None:
        made.cache_clear()

    worker_process_init.connect(forget, weak=False)
    return made
