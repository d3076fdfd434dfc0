"""The saga log in the users database: the orchestrator's source of truth, for every kind of saga.

Registration, deletion, restore and purge sagas share one table and one set of rules: the pivot
and the start of compensation take the saga row's lock, so a saga is either completed or
compensated, never both; a step's status only moves forward; the outbox and the watchdog
publish and re-drive them alike. What differs per kind is the steps and what the pivot and a
failure do to the account.
"""

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from celery import Celery
from celery.canvas import Signature
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, sessionmaker

from saga import (
    ACCOUNT_SAGAS,
    PIVOT,
    DeletionPayload,
    PurgePayload,
    RegistrationPayload,
    SagaKind,
    Step,
    compensation_chain,
    failpoint,
    registration_saga,
    welcome_chain,
)

from .models import (
    SAGA_CLASSES,
    AccountStatus,
    OutboxKind,
    OutboxMessage,
    RegistrationStatus,
    Saga,
    SagaStatus,
    SagaStep,
    StepStatus,
    UserAccount,
    purged_email,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Shape:
    steps: list[str]
    pivot: str
    compensatable: frozenset[str]


SHAPES = {
    SagaKind.REGISTRATION: _Shape(list(Step), PIVOT, frozenset({Step.CREATE_PROFILE, Step.RECORD_ADDRESS})),
    **{kind: _Shape(definition.step_names, definition.pivot, frozenset(definition.undo)) for kind, definition in ACCOUNT_SAGAS.items()},
}
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


def _now() -> datetime:
    return datetime.now(UTC)


def start_saga(session: Session, user: UserAccount, kind: SagaKind) -> Saga:
    """Record the saga and its start message in the caller's transaction (the outbox)."""
    saga = SAGA_CLASSES[kind](id=uuid.uuid4(), user_id=user.id, status=SagaStatus.RUNNING)
    session.add(saga)
    session.flush()
    steps = SHAPES[kind].steps
    session.add_all(SagaStep(saga_id=saga.id, step=step, position=i, status=StepStatus.PENDING) for i, step in enumerate(steps))
    session.add(OutboxMessage(saga_id=saga.id, kind=OutboxKind.START))
    session.flush()
    return saga


def start_registration(session: Session, user: UserAccount) -> Saga:
    return start_saga(session, user, SagaKind.REGISTRATION)


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


def _on_pivot(kind: SagaKind, user: UserAccount) -> None:
    """What passing the pivot makes final for the account."""
    if kind == SagaKind.REGISTRATION:
        user.registration_status = RegistrationStatus.COMPLETED
    elif kind == SagaKind.DELETION:
        user.account_status = AccountStatus.DELETED
    elif kind == SagaKind.RESTORE:
        user.account_status = AccountStatus.ACTIVE
        user.deleted_at = user.purge_after = None
    elif kind == SagaKind.PURGE:
        user.account_status = AccountStatus.PURGED
        user.email = purged_email(user.id)  # the email is free for a new registration
        user.first_name = user.last_name = user.password_hash = ""


def _on_failure(kind: SagaKind, user: UserAccount) -> None:
    """What a compensated saga leaves the account as: as it was before the saga."""
    if kind == SagaKind.REGISTRATION:
        user.registration_status = RegistrationStatus.FAILED  # frees the email for a new attempt
    elif kind == SagaKind.DELETION:
        user.account_status = AccountStatus.ACTIVE
        user.deleted_at = user.purge_after = None
    elif kind == SagaKind.RESTORE:
        user.account_status = AccountStatus.DELETED
    else:
        raise ValueError(f"a {kind} saga is never compensated")


def pass_pivot(session: Session, saga_id: uuid.UUID, kind: SagaKind) -> None:
    """The pivot: from here on the saga's outcome is final and nothing is compensated."""
    saga = _lock_saga(session, saga_id)
    if saga.kind != kind:
        raise ValueError(f"saga {saga_id} is a {saga.kind} saga, not a {kind} saga")
    if saga.status == SagaStatus.COMPLETED:
        return
    if saga.status != SagaStatus.RUNNING:
        raise SagaNotRunning(f"saga {saga_id} is {saga.status}")
    shape = SHAPES[kind]
    user = session.get_one(UserAccount, saga.user_id, with_for_update=True)
    failpoint(shape.pivot, user.email)
    saga.status = SagaStatus.COMPLETED
    saga.progressed_at = _now()
    _on_pivot(kind, user)
    steps = _steps(session, saga_id)
    for step in shape.steps[: shape.steps.index(shape.pivot) + 1]:
        _advance(steps[step], StepStatus.DONE)
    if shape.steps[-1] == shape.pivot:  # nothing after the pivot: the saga is over
        saga.finished_at = saga.progressed_at


def complete_registration(session: Session, saga_id: uuid.UUID) -> None:
    pass_pivot(session, saga_id, SagaKind.REGISTRATION)


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
    order = SHAPES[SagaKind(saga.kind)].steps
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
    kind = SagaKind(saga.kind)
    steps = _steps(session, saga_id)
    saga.status = SagaStatus.FAILED
    saga.progressed_at = saga.finished_at = _now()
    _on_failure(kind, session.get_one(UserAccount, saga.user_id, with_for_update=True))
    for step in SHAPES[kind].compensatable:
        if steps[step].status == StepStatus.DONE:
            steps[step].status = StepStatus.COMPENSATED


fail_registration = fail_saga  # the registration chain's name for its last link


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


def _payload(kind: SagaKind, user: UserAccount) -> dict[str, object]:
    """What the saga's steps on other services need to know about the user."""
    identity = {"user_id": user.id, "email": user.email, "first_name": user.first_name, "last_name": user.last_name}
    if kind == SagaKind.DELETION:
        return DeletionPayload.model_validate({**identity, "restore_until": user.purge_after}).model_dump(mode="json")
    if kind == SagaKind.PURGE:
        return PurgePayload(user_id=user.id).model_dump(mode="json")
    return RegistrationPayload.model_validate(identity).model_dump(mode="json")


def _signature(session: Session, app: Celery, message: OutboxMessage) -> Signature:
    saga = session.get_one(Saga, message.saga_id)
    user = session.get_one(UserAccount, saga.user_id)
    saga_id = str(saga.id)
    kind = SagaKind(saga.kind)
    if kind == SagaKind.REGISTRATION:
        if message.kind == OutboxKind.COMPENSATE:
            return compensation_chain(app, saga_id, user.id, saga.failed_step or Step.COMPLETE_REGISTRATION)
        if message.kind == OutboxKind.WELCOME:
            return welcome_chain(app, saga_id, user.id)
        return registration_saga(app, saga_id, RegistrationPayload.model_validate(_payload(kind, user)))
    definition = ACCOUNT_SAGAS[kind]
    if message.kind == OutboxKind.COMPENSATE:
        return definition.compensation_chain(app, saga_id, _payload(kind, user), saga.failed_step or definition.pivot)
    return definition.saga(app, saga_id, _payload(kind, user))


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
    unpublished = exists().where(OutboxMessage.saga_id == Saga.id, OutboxMessage.published_at.is_(None))
    wait = func.make_interval(0, 0, 0, 0, 0, 0, stale_after_seconds * func.power(2, func.least(Saga.redrive_count, 5)))
    query = (
        select(Saga)
        .where(
            Saga.finished_at.is_(None),
            Saga.progressed_at < func.now() - wait,
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
            status = session.scalar(select(Saga.status).where(Saga.id == saga_id))
        if status in FINAL or time.monotonic() >= deadline:
            return str(status)
        time.sleep(delay)
        delay = min(delay * 1.5, 0.1)


def start_due_purges(make_session: sessionmaker[Session], limit: int = 100) -> int:
    """Start the purge saga of every deleted account whose restore period ended."""
    query = (
        select(UserAccount)
        .where(UserAccount.account_status == AccountStatus.DELETED, UserAccount.purge_after < func.now())
        .order_by(UserAccount.purge_after)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    with make_session.begin() as session:
        users = session.scalars(query).all()
        for user in users:
            log.info("user %s: restore period over, purging", user.id)
            user.account_status = AccountStatus.PURGING
            start_saga(session, user, SagaKind.PURGE)
    return len(users)
