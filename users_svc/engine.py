"""The saga engine: drives any declared saga (``saga.SAGAS``) through the saga log in the users database.

The saga log is the orchestrator's source of truth. Every kind follows the same rules: the pivot
and the start of compensation take the saga row's lock, so a saga is either completed or
compensated, never both; a step's status only moves forward. What differs per kind is its
declaration (steps, pivot, compensations) and its effects on the account (``effects.EFFECTS``).
Publishing is the outbox's job (``outbox``), re-driving the watchdog's (``watchdog``).
"""

import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from saga import SAGAS, SAGAS_COMPENSATED, SAGAS_COMPLETED, SAGAS_FAILED, SAGAS_STARTED, SagaDeclaration, count_after_commit, failpoint

from .effects import EFFECTS
from .metrics import saga_finished
from .models import SAGA_CLASSES, OutboxKind, OutboxMessage, Saga, SagaStatus, SagaStep, StepStatus, UserAccount

# A step's status only moves up this order, whatever order its events arrive in.
_RANK = {
    StepStatus.PENDING: 0,
    StepStatus.RETRYING: 1,
    StepStatus.DONE: 2,
    StepStatus.SKIPPED: 2,
    StepStatus.FAILED: 3,
    StepStatus.COMPENSATED: 4,
}
FINAL = {SagaStatus.COMPLETED, SagaStatus.FAILED}


class SagaPastPivot(Exception):
    """Compensation was asked for a saga that already passed its pivot: refused."""


class SagaNotRunning(Exception):
    """The pivot arrived after compensation began: the saga stays failed."""


def now() -> datetime:
    return datetime.now(UTC)


def declaration_of(saga: Saga) -> SagaDeclaration:
    return SAGAS[saga.kind]


def start_saga(session: Session, user: UserAccount, kind: str) -> Saga:
    """Record the saga, its steps and its start message in the caller's transaction (the outbox)."""
    saga = SAGA_CLASSES[kind](id=uuid.uuid4(), user_id=user.id, status=SagaStatus.RUNNING)
    session.add(saga)
    session.flush()
    steps = SAGAS[kind].step_names
    session.add_all(SagaStep(saga_id=saga.id, step=step, position=i, status=StepStatus.PENDING) for i, step in enumerate(steps))
    session.add(OutboxMessage(saga_id=saga.id, kind=OutboxKind.START))
    session.flush()
    count_after_commit(session, SAGAS_STARTED, kind)
    return saga


def _lock_saga(session: Session, saga_id: uuid.UUID) -> Saga:
    saga = session.get(Saga, saga_id, with_for_update=True)
    if saga is None:
        raise LookupError(f"no saga {saga_id}")
    return saga


def _steps(session: Session, saga_id: uuid.UUID) -> dict[str, SagaStep]:
    rows = session.scalars(select(SagaStep).where(SagaStep.saga_id == saga_id).with_for_update())
    return {row.step: row for row in rows}


def _advance(step: SagaStep, status: StepStatus) -> None:
    previous = StepStatus(step.status)
    if _RANK[status] <= _RANK[previous]:
        return
    step.status = status
    # Retry events count the failed attempts; the one that succeeded counts too.
    if status == StepStatus.DONE:
        step.attempts = step.attempts + 1 if previous == StepStatus.RETRYING else max(step.attempts, 1)
    elif status == StepStatus.FAILED:
        step.attempts = max(step.attempts, 1)


def pass_pivot(session: Session, saga_id: uuid.UUID, kind: str) -> None:
    """The pivot: from here on the saga's outcome is final and nothing is compensated."""
    saga = _lock_saga(session, saga_id)
    if saga.kind != kind:
        raise ValueError(f"saga {saga_id} is a {saga.kind} saga, not a {kind} saga")
    if saga.status == SagaStatus.COMPLETED:
        return
    if saga.status != SagaStatus.RUNNING:
        raise SagaNotRunning(f"saga {saga_id} is {saga.status}")
    declaration = declaration_of(saga)
    user = session.get_one(UserAccount, saga.user_id, with_for_update=True)
    failpoint(declaration.pivot, user.email)
    saga.status = SagaStatus.COMPLETED
    saga.progressed_at = now()
    count_after_commit(session, SAGAS_COMPLETED, kind)
    EFFECTS[kind].on_pivot(user)
    steps = _steps(session, saga_id)
    for step in declaration.until_pivot:
        _advance(steps[step.name], StepStatus.DONE)
    if not declaration.after_pivot:  # nothing after the pivot: the saga is over
        saga.finished_at = saga.progressed_at
        saga_finished(session, saga)


def begin_compensation(session: Session, saga_id: uuid.UUID, failed_step: str) -> None:
    """First link of every compensation chain; serialised with the pivot on the saga row."""
    saga = _lock_saga(session, saga_id)
    if saga.status == SagaStatus.COMPLETED:
        raise SagaPastPivot(f"saga {saga_id} completed; {failed_step} failure is not compensated")
    if saga.status == SagaStatus.RUNNING:
        saga.status = SagaStatus.COMPENSATING
        saga.failed_step = failed_step
        count_after_commit(session, SAGAS_COMPENSATED, saga.kind)
    saga.progressed_at = now()
    steps = _steps(session, saga_id)
    order = declaration_of(saga).step_names
    failed_at = order.index(failed_step)
    for i, step in enumerate(order):
        _advance(steps[step], StepStatus.DONE if i < failed_at else StepStatus.FAILED if i == failed_at else StepStatus.SKIPPED)


def fail_saga(session: Session, saga_id: uuid.UUID) -> None:
    """Last link of every compensation chain: the earlier links undid the done steps."""
    saga = _lock_saga(session, saga_id)
    if saga.status == SagaStatus.COMPLETED:
        raise SagaPastPivot(f"saga {saga_id} completed; refusing to fail it")
    if saga.status == SagaStatus.FAILED:
        return
    on_failure = EFFECTS[saga.kind].on_failure
    if on_failure is None:
        raise ValueError(f"a {saga.kind} saga is never compensated")
    steps = _steps(session, saga_id)
    saga.status = SagaStatus.FAILED
    saga.progressed_at = saga.finished_at = now()
    count_after_commit(session, SAGAS_FAILED, saga.kind)
    saga_finished(session, saga)
    on_failure(session.get_one(UserAccount, saga.user_id, with_for_update=True))
    for step in declaration_of(saga).compensatable:
        if steps[step].status == StepStatus.DONE:
            steps[step].status = StepStatus.COMPENSATED


def record_step_event(session: Session, saga_id: uuid.UUID, step: str, event: str, error: str | None, attempt: int) -> None:
    """A step reports a retry, its final failure, or (after the pivot) that it is done."""
    saga = _lock_saga(session, saga_id)
    row = session.get_one(SagaStep, (saga_id, step), with_for_update=True)
    row.attempts = max(row.attempts, attempt)
    if error:
        row.error = error
    _advance(row, StepStatus(event))
    saga.progressed_at = now()
    after_pivot = declaration_of(saga).after_pivot
    if any(s.name == step for s in after_pivot):
        # The saga is over once every step after its pivot is done or failed for good.
        statuses = session.scalars(
            select(SagaStep.status).where(SagaStep.saga_id == saga_id, SagaStep.step.in_([s.name for s in after_pivot]))
        )
        if all(status in (StepStatus.DONE, StepStatus.FAILED) for status in statuses):
            saga.finished_at = saga.progressed_at
            saga_finished(session, saga)


def wait_for_final(make_session: sessionmaker[Session], saga_id: uuid.UUID, timeout: float) -> str:
    """Poll the saga's status until it is final or the timeout passes; return the last status."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        with make_session() as session:
            status = session.scalar(select(Saga.status).where(Saga.id == saga_id))
        if status in FINAL or time.monotonic() >= deadline:
            return str(status)
        time.sleep(delay)
        delay = min(delay * 1.5, 0.1)
