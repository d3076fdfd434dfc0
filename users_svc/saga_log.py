"""The registration saga's log in the users database: the orchestrator's source of truth."""

import logging
import time
import uuid
from datetime import UTC, datetime

from celery import Celery
from celery.canvas import Signature
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, sessionmaker

from saga import RegistrationPayload, Step, compensation_chain, failpoint, registration_saga, welcome_chain

from .models import OutboxKind, OutboxMessage, RegistrationSaga, RegistrationStatus, SagaStatus, SagaStep, StepStatus, UserAccount

log = logging.getLogger(__name__)

STEPS = list(Step)
COMPENSATABLE = {Step.CREATE_PROFILE, Step.RECORD_ADDRESS}
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
    """Compensation was asked for a registration that already completed: refused."""


class SagaNotRunning(Exception):
    """The pivot arrived after compensation began: the registration stays failed."""


def _now() -> datetime:
    return datetime.now(UTC)


def start_registration(session: Session, user: UserAccount) -> RegistrationSaga:
    """Record the saga and its start message in the caller's transaction (the outbox)."""
    saga = RegistrationSaga(id=uuid.uuid4(), user_id=user.id, status=SagaStatus.RUNNING)
    session.add(saga)
    session.flush()
    session.add_all(SagaStep(saga_id=saga.id, step=step, position=i, status=StepStatus.PENDING) for i, step in enumerate(STEPS))
    session.add(OutboxMessage(saga_id=saga.id, kind=OutboxKind.START))
    session.flush()
    return saga


def _lock_saga(session: Session, saga_id: uuid.UUID) -> RegistrationSaga:
    saga = session.get(RegistrationSaga, saga_id, with_for_update=True)
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


def complete_registration(session: Session, saga_id: uuid.UUID) -> None:
    """The pivot: from here on the registration is final and nothing is compensated."""
    saga = _lock_saga(session, saga_id)
    if saga.status == SagaStatus.COMPLETED:
        return
    if saga.status != SagaStatus.RUNNING:
        raise SagaNotRunning(f"saga {saga_id} is {saga.status}")
    user = session.get_one(UserAccount, saga.user_id)
    failpoint(Step.COMPLETE_REGISTRATION, user.email)
    saga.status = SagaStatus.COMPLETED
    saga.progressed_at = _now()
    user.registration_status = RegistrationStatus.COMPLETED
    steps = _steps(session, saga_id)
    for step in STEPS[: STEPS.index(Step.COMPLETE_REGISTRATION) + 1]:
        _advance(steps[step], StepStatus.DONE)


def begin_compensation(session: Session, saga_id: uuid.UUID, failed_step: str) -> None:
    """First link of every compensation chain; serialised with the pivot on the saga row."""
    saga = _lock_saga(session, saga_id)
    if saga.status == SagaStatus.COMPLETED:
        raise SagaPastPivot(f"saga {saga_id} completed; {failed_step} failure is not compensated")
    if saga.status == SagaStatus.RUNNING:
        saga.status = SagaStatus.COMPENSATING
        saga.failed_step = failed_step
    saga.progressed_at = _now()
    steps = _steps(session, saga_id)
    failed_at = STEPS.index(Step(failed_step))
    for i, step in enumerate(STEPS):
        _advance(steps[step], StepStatus.DONE if i < failed_at else StepStatus.FAILED if i == failed_at else StepStatus.SKIPPED)


def fail_registration(session: Session, saga_id: uuid.UUID) -> None:
    """Last link of every compensation chain: the earlier links undid the done steps."""
    saga = _lock_saga(session, saga_id)
    if saga.status == SagaStatus.COMPLETED:
        raise SagaPastPivot(f"saga {saga_id} completed; refusing to fail it")
    if saga.status == SagaStatus.FAILED:
        return
    steps = _steps(session, saga_id)
    saga.status = SagaStatus.FAILED
    saga.progressed_at = saga.finished_at = _now()
    session.get_one(UserAccount, saga.user_id).registration_status = RegistrationStatus.FAILED
    for step in COMPENSATABLE:
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
    saga.progressed_at = _now()
    if step == Step.SEND_WELCOME_EMAIL and row.status in (StepStatus.DONE, StepStatus.FAILED):
        saga.finished_at = saga.progressed_at


def _signature(session: Session, app: Celery, message: OutboxMessage) -> Signature:
    saga = session.get_one(RegistrationSaga, message.saga_id)
    user = session.get_one(UserAccount, saga.user_id)
    saga_id = str(saga.id)
    if message.kind == OutboxKind.COMPENSATE:
        return compensation_chain(app, saga_id, user.id, saga.failed_step or Step.COMPLETE_REGISTRATION)
    if message.kind == OutboxKind.WELCOME:
        return welcome_chain(app, saga_id, user.id)
    payload = RegistrationPayload(user_id=user.id, email=user.email, first_name=user.first_name, last_name=user.last_name)
    return registration_saga(app, saga_id, payload)


def publish_outbox(make_session: sessionmaker[Session], app: Celery, saga_id: uuid.UUID | None = None, limit: int = 100) -> int:
    """Publish unpublished outbox messages; stop at the first broker error and keep the rest.

    Rows are locked with SKIP LOCKED, so the API's fast path and the relay never publish
    the same message at once.
    """
    published = 0
    with make_session.begin() as session:
        query = select(OutboxMessage).where(OutboxMessage.published_at.is_(None)).order_by(OutboxMessage.id).limit(limit)
        if saga_id is not None:
            query = query.where(OutboxMessage.saga_id == saga_id)
        for message in session.scalars(query.with_for_update(skip_locked=True)).all():
            try:
                _signature(session, app, message).apply_async(retry=False)
            except Exception as exc:  # broker down: the relay tries again
                log.warning("saga=%s outbox publish failed, will retry: %r", message.saga_id, exc)
                break
            message.published_at = _now()
            published += 1
    return published


def redrive_stale(make_session: sessionmaker[Session], stale_after_seconds: float, limit: int = 100) -> int:
    """Queue sagas that stopped moving to be published again (backing off per re-drive)."""
    unpublished = exists().where(OutboxMessage.saga_id == RegistrationSaga.id, OutboxMessage.published_at.is_(None))
    wait = func.make_interval(0, 0, 0, 0, 0, 0, stale_after_seconds * func.power(2, func.least(RegistrationSaga.redrive_count, 5)))
    query = (
        select(RegistrationSaga)
        .where(
            RegistrationSaga.finished_at.is_(None),
            RegistrationSaga.progressed_at < func.now() - wait,
            ~unpublished,
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    kinds = {SagaStatus.RUNNING: OutboxKind.START, SagaStatus.COMPENSATING: OutboxKind.COMPENSATE, SagaStatus.COMPLETED: OutboxKind.WELCOME}
    with make_session.begin() as session:
        sagas = session.scalars(query).all()
        for saga in sagas:
            log.warning("saga=%s stalled while %s; re-driving (%d)", saga.id, saga.status, saga.redrive_count + 1)
            session.add(OutboxMessage(saga_id=saga.id, kind=kinds[SagaStatus(saga.status)]))
            saga.redrive_count += 1
            saga.progressed_at = _now()
    return len(sagas)


def wait_for_final(make_session: sessionmaker[Session], saga_id: uuid.UUID, timeout: float) -> str:
    """Poll the saga's status until it is final or the timeout passes; return the last status."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        with make_session() as session:
            status = session.scalar(select(RegistrationSaga.status).where(RegistrationSaga.id == saga_id))
        if status in FINAL or time.monotonic() >= deadline:
            return str(status)
        time.sleep(delay)
        delay = min(delay * 1.5, 0.1)
