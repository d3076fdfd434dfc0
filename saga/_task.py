"""The base classes of every saga task: the retry protocol, and each run's outcome reported to the saga log."""

import logging
import time
from datetime import UTC, datetime
from typing import Any, NamedTuple

from celery import Task
from celery._state import get_current_worker_task
from celery.signals import before_task_publish
from sqlalchemy.exc import InterfaceError, OperationalError

from ._metrics import STEP_DURATION, STEP_RETRIES
from ._names import Queue, TaskName
from ._sagas import SAGAS

log = logging.getLogger("saga")

# The step each compensation task undoes (one step per undo task, whatever the saga).
_UNDOES = {step.undo: step.name for declaration in SAGAS.values() for step in declaration.steps if step.undo}


class StepReport(NamedTuple):
    """One run of a step or a compensation, as its worker saw it (the saga history's source)."""

    step: str
    outcome: str  # done, retrying, failed; compensated, compensation_retrying, compensation_failed
    error: str | None
    attempt: int
    started_at: str | None  # ISO 8601, this worker's clock
    finished_at: str | None


# The message header in which a step's success travels on with the saga's next step.
REPORTS_HEADER = "saga_reports"


def carried_reports(request: Any) -> list[StepReport]:
    """The reports an incoming message carries: earlier steps' successes, not yet recorded."""
    return [StepReport(*report) for report in (getattr(request, "headers", None) or {}).get(REPORTS_HEADER) or ()]


class SagaTask(Task):
    """A task whose first argument is the saga id.

    Each run of a step or a compensation is reported to the users service: its outcome (done,
    retrying, failed), its error and attempt, and when it started and finished as this worker
    measured, so the saga's history shows every run. A success travels in a header of the message
    that runs the saga's next step (``REPORTS_HEADER``), and on from there, until a users task
    records it in its own transaction (the pivot), or a step with no next step, a retry or a
    failure sends everything carried in one message (``users.record_step_events``). So a
    registration costs one report message, not one per step. The saga id appears in every log line.
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
        if self.reports_success and not getattr(self.request, "saga_reports_passed_on", False):
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

    def _run_report(self, outcome: str, exc: BaseException | None) -> StepReport | None:
        """This run's report (None for a task that is no saga step nor undoes one)."""
        undoes = _UNDOES.get(self.name)
        step = self.step or undoes
        if not step:
            return None
        if undoes and not self.step:
            outcome = {"done": "compensated", "retrying": "compensation_retrying", "failed": "compensation_failed"}[outcome]
        error = f"{type(exc).__name__}: {exc}"[:500] if exc is not None else None
        return StepReport(step, outcome, error, self.request.retries + 1, getattr(self.request, "saga_started_at", None), _now())

    def _reports(self, outcome: str, exc: BaseException | None) -> list[StepReport]:
        """The earlier steps' successes this message carried, then this run's report."""
        own = self._run_report(outcome, exc)
        return carried_reports(self.request) + ([own] if own else [])

    def _report(self, outcome: str, args: tuple[Any, ...], kwargs: dict[str, Any], exc: BaseException | None) -> None:
        """Send this run's report, with the earlier steps' successes this message carried, in one message."""
        saga_id = _saga_id(args, kwargs)
        reports = self._reports(outcome, exc)
        if not (saga_id and reports):
            return
        try:
            self.app.send_task(str(TaskName.RECORD_STEP_EVENTS), args=(saga_id, reports), queue=Queue.USERS)
        except Exception:  # the watchdog still sees the saga stall; never mask the task's own error
            log.exception("saga=%s could not report %s of %s", saga_id, outcome, reports[-1].step)


def _pass_reports_on(headers: dict[str, Any] | None = None, **_: object) -> None:
    """A step that succeeded publishes the saga's next step (Celery's chain): its report, and the
    ones it carried, go in that message's header instead of a message of their own.

    Only the saga's own next step qualifies: its task id is the deterministic ``<saga id>:<step>``
    (``step_task_id``), unlike a retry (this task's own id), a compensation or a report.
    """
    task = get_current_worker_task()
    if headers is None or not isinstance(task, SagaTask) or not task.reports_success:
        return
    request = task.request
    saga_id = _saga_id(tuple(request.args or ()), request.kwargs or {})
    message_id = str(headers.get("id", ""))
    if not saga_id or not message_id.startswith(f"{saga_id}:") or message_id == request.id:
        return
    headers[REPORTS_HEADER] = task._reports("done", None)
    request.saga_reports_passed_on = True


before_task_publish.connect(_pass_reports_on, weak=False)


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
