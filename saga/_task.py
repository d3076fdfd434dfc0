"""The base classes of every saga task: the retry protocol, and each run's outcome reported to the saga log."""

import logging
import time
from datetime import UTC, datetime
from typing import Any

from celery import Task
from sqlalchemy.exc import InterfaceError, OperationalError

from ._metrics import STEP_DURATION, STEP_RETRIES
from ._names import Queue, TaskName
from ._sagas import SAGAS

log = logging.getLogger("saga")

# The step each compensation task undoes (one step per undo task, whatever the saga).
_UNDOES = {step.undo: step.name for declaration in SAGAS.values() for step in declaration.steps if step.undo}


class SagaTask(Task):
    """A task whose first argument is the saga id.

    Each run of a step or a compensation is reported to the users service in one message
    (``users.record_step_event``): its outcome (done, retrying, failed), its error and attempt,
    and when it started and finished as this worker measured, so the saga's history shows every
    run. The saga id appears in every log line.
    """

    abstract = True
    step: str = ""  # the saga step this task performs; empty for compensations
    # False for the users service's own steps: they write their history themselves, no message needed.
    reports_success: bool = True

    def before_start(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.request.saga_started_at = _now()
        log.info("saga=%s task=%s id=%s start", _saga_id(args, kwargs), self.name, task_id)
        _started[task_id] = time.monotonic()

    def on_success(self, retval: Any, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        log.info("saga=%s task=%s id=%s done", _saga_id(args, kwargs), self.name, task_id)
        self._observe(task_id, "done")
        if self.reports_success:
            self._report("done", args, kwargs, None)

    def on_retry(self, exc: BaseException, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any], einfo: Any) -> None:
        log.warning("saga=%s task=%s id=%s retry: %r", _saga_id(args, kwargs), self.name, task_id, exc)
        self._observe(task_id, "retry")
        STEP_RETRIES.labels(self.step or self.name, type(exc).__name__).inc()
        self._report("retrying", args, kwargs, exc)

    def on_failure(self, exc: BaseException, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any], einfo: Any) -> None:
        log.error("saga=%s task=%s id=%s failed: %r", _saga_id(args, kwargs), self.name, task_id, exc)
        self._observe(task_id, "failed")
        self._report("failed", args, kwargs, exc)

    def _observe(self, task_id: str, outcome: str) -> None:
        started = _started.pop(task_id, None)
        if started is not None:
            STEP_DURATION.labels(self.step or self.name, outcome).observe(time.monotonic() - started)

    def _report(self, outcome: str, args: tuple[Any, ...], kwargs: dict[str, Any], exc: BaseException | None) -> None:
        saga_id = _saga_id(args, kwargs)
        undoes = _UNDOES.get(self.name)
        step = self.step or undoes
        if not (step and saga_id):
            return
        if undoes and not self.step:
            outcome = {"done": "compensated", "retrying": "compensation_retrying", "failed": "compensation_failed"}[outcome]
        error = f"{type(exc).__name__}: {exc}"[:500] if exc is not None else None
        started_at = getattr(self.request, "saga_started_at", None)
        try:
            self.app.send_task(
                str(TaskName.RECORD_STEP_EVENT),
                args=(saga_id, step, outcome, error, self.request.retries + 1, started_at, _now()),
                queue=Queue.USERS,
            )
        except Exception:  # the watchdog still sees the saga stall; never mask the task's own error
            log.exception("saga=%s could not report %s of %s", saga_id, outcome, step)


def _now() -> str:
    return datetime.now(UTC).isoformat()


# When each task running in this process started (a pool child runs one at a time).
_started: dict[str, float] = {}


def _saga_id(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    value = kwargs.get("saga_id", args[0] if args else None)
    return str(value) if value is not None else None


# Faults that pass: the database restarting, a connection dropped. Anything else is permanent.
TRANSIENT_FAULTS: tuple[type[Exception], ...] = (OperationalError, InterfaceError)


class StepTask(SagaTask):
    """A saga step up to its pivot: retries a transient fault a few times, then fails (and is compensated)."""

    abstract = True
    autoretry_for = TRANSIENT_FAULTS
    max_retries = 5
    retry_backoff = 1
    retry_backoff_max = 30


class RetriedForeverTask(Task):
    """A task that must not give up: it retries a transient fault (``autoretry_for``, which a task
    may widen) forever, backing off."""

    abstract = True
    autoretry_for = TRANSIENT_FAULTS
    max_retries = None
    retry_backoff = 1
    retry_backoff_max = 30


class PersistentTask(SagaTask, RetriedForeverTask):
    """A saga task that must not give up: compensations, the saga log, steps that only retry."""

    abstract = True
