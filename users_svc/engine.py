"""The saga engine: drives any declared saga (``saga.SAGAS``) through the saga log in the users database.

The saga log is the orchestrator's source of truth. Every kind follows the same rules: the pivot
and the start of compensation take the saga row's lock, so a saga is either completed or
compensated, never both; a step's status only moves forward. What differs per kind is its
declaration (steps, pivot, compensations) and its effects on the account (``effects.EFFECTS``).
Publishing is the outbox's job (``outbox``), re-driving the watchdog's (``watchdog``).

Each change of state appends its events to the saga's history (``history``) in the same
transaction. Steps that run on other services report their outcome in one message, with the
times their worker measured (``record_step_event``).
"""

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from saga import (
    SAGAS,
    SAGAS_COMPENSATED,
    SAGAS_COMPLETED,
    SAGAS_FAILED,
    SAGAS_STARTED,
    SagaDeclaration,
    count_after_commit,
    failpoint,
    saga_expires,
)

from . import history, queries
from .effects import EFFECTS
from .metrics import saga_finished
from .models import SAGA_CLASSES, OutboxKind, OutboxMessage, Saga, SagaEventType, SagaStatus, SagaStep, StepStatus, UserAccount

E = SagaEventType

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
FIRST_LOOK_SECONDS = 0.015


class SagaPastPivot(Exception):
    """Compensation was asked for a saga that already passed its pivot: refused."""


class SagaNotRunning(Exception):
    """The pivot arrived after compensation began: the saga stays failed."""


class SagaFinished(Exception):
    """An operator asked to re-drive a saga that is over."""


class SagaPastDeadline(Exception):
    """An operator asked to re-drive a saga past its deadline: its messages would expire unrun."""


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
    history.record(session, saga.id, E.SAGA_STARTED, detail=kind)
    session.flush()
    count_after_commit(session, SAGAS_STARTED, kind)
    return saga


def _event(
    session: Session,
    saga: Saga,
    type: SagaEventType,
    *,
    step: str | None = None,
    attempt: int | None = None,
    error: str | None = None,
    actor: str | None = None,
    detail: str | None = None,
    at: datetime | None = None,
) -> None:
    round = saga.redrive_count
    history.record(session, saga.id, type, step=step, attempt=attempt, error=error, actor=actor, detail=detail, at=at, round=round)


def record_published(session: Session, saga: Saga, kind: OutboxKind, at: datetime | None = None) -> None:
    """An outbox message went to the broker at ``at`` (taken before the publish, which a fast
    worker can outrun): what it queued first."""
    declaration = declaration_of(saga)
    if kind == OutboxKind.COMPENSATE:
        first_undo = next(iter(_undo_order(saga)), None)
        if first_undo is not None:
            _event(session, saga, E.COMPENSATION_QUEUED, step=first_undo, at=at)
        return
    steps = declaration.after_pivot if kind == OutboxKind.AFTER_PIVOT else declaration.steps
    if steps:
        _event(session, saga, E.STEP_QUEUED, step=steps[0].name, detail="re-driven" if saga.redrive_count else None, at=at)


def _undo_order(saga: Saga) -> list[str]:
    """The steps the saga's compensation undoes, in the order it undoes them (latest first)."""
    declaration = declaration_of(saga)
    if saga.failed_step is None or saga.failed_step not in declaration.step_names:
        return []
    done_before = declaration.steps[: declaration.step_names.index(saga.failed_step)]
    return [step.name for step in reversed(done_before) if step.undo]


def _queued_after(session: Session, saga: Saga, step: str, at: datetime) -> None:
    """The chain publishes the next step as soon as one is done (the pivot's next: by the pivot)."""
    declaration = declaration_of(saga)
    names = declaration.step_names
    i = names.index(step)
    if step != declaration.pivot and i + 1 < len(names):
        _event(session, saga, E.STEP_QUEUED, step=names[i + 1], at=at)


# In Session.info: the saga rows (and their steps) this transaction locked already. The pivot
# records the reports it carried first: each would otherwise lock the same rows again.
_LOCKED = "saga_rows_locked"


def lock_saga(session: Session, saga_id: uuid.UUID) -> Saga:
    locked: dict[object, Any] = session.info.setdefault(_LOCKED, {})
    if saga_id not in locked:
        saga = session.get(Saga, saga_id, with_for_update=True)
        if saga is None:
            raise LookupError(f"no saga {saga_id}")
        locked[saga_id] = saga
    saga_locked: Saga = locked[saga_id]
    return saga_locked


def _steps(session: Session, saga_id: uuid.UUID) -> dict[str, SagaStep]:
    locked: dict[object, Any] = session.info.setdefault(_LOCKED, {})
    key = ("steps", saga_id)
    if key not in locked:
        rows = session.scalars(select(SagaStep).where(SagaStep.saga_id == saga_id).with_for_update())
        locked[key] = {row.step: row for row in rows}
    steps: dict[str, SagaStep] = locked[key]
    return steps


@event.listens_for(Session, "after_transaction_end")
def _forget_locks(session: Session, _transaction: object) -> None:
    session.info.pop(_LOCKED, None)  # a savepoint's end too: what it locked may be released


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


def pass_pivot(session: Session, saga_id: uuid.UUID, kind: str, *, attempt: int = 1, started_at: datetime | None = None) -> None:
    """The pivot: from here on the saga's outcome is final and nothing is compensated."""
    saga = lock_saga(session, saga_id)
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
    steps[declaration.pivot].attempts = max(steps[declaration.pivot].attempts, attempt)
    _event(session, saga, E.STEP_STARTED, step=declaration.pivot, attempt=attempt, at=started_at or saga.progressed_at)
    _event(session, saga, E.STEP_DONE, step=declaration.pivot, attempt=attempt, at=saga.progressed_at)
    _event(session, saga, E.PIVOT_PASSED, step=declaration.pivot, at=saga.progressed_at)
    if declaration.after_pivot:
        _event(session, saga, E.STEP_QUEUED, step=declaration.after_pivot[0].name, at=saga.progressed_at)
    else:  # nothing after the pivot: the saga is over
        saga.finished_at = saga.progressed_at
        saga_finished(session, saga)
        _event(session, saga, E.SAGA_COMPLETED, at=saga.finished_at)


def begin_compensation(session: Session, saga_id: uuid.UUID, failed_step: str) -> None:
    """First link of every compensation chain; serialised with the pivot on the saga row."""
    saga = lock_saga(session, saga_id)
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
    first_undo = next(iter(_undo_order(saga)), None)
    if first_undo is not None:
        _event(session, saga, E.COMPENSATION_QUEUED, step=first_undo, detail=f"{saga.failed_step} failed")


def fail_saga(session: Session, saga_id: uuid.UUID) -> None:
    """Last link of every compensation chain: the earlier links undid the done steps."""
    saga = lock_saga(session, saga_id)
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
    _event(session, saga, E.SAGA_FAILED, step=saga.failed_step, at=saga.finished_at)


# What a worker reports, and the events it becomes: (started, outcome).
_OUTCOMES = {
    "retrying": (E.STEP_STARTED, E.STEP_RETRIED),
    "failed": (E.STEP_STARTED, E.STEP_FAILED),
    "done": (E.STEP_STARTED, E.STEP_DONE),
    "compensation_retrying": (E.COMPENSATION_STARTED, E.COMPENSATION_RETRIED),
    "compensation_failed": (E.COMPENSATION_STARTED, E.COMPENSATION_FAILED),
    "compensated": (E.COMPENSATION_STARTED, E.COMPENSATION_DONE),
}


def record_step_event(
    session: Session,
    saga_id: uuid.UUID,
    step: str,
    event: str,
    error: str | None,
    attempt: int,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
) -> None:
    """A step (or compensation) reports one run's outcome, with the times its worker measured.

    Older releases sent no times: retries and final failures, and a step after the pivot done
    (``attempt`` 0, from the chain). Each becomes the events it describes, in this transaction.
    """
    saga = lock_saga(session, saga_id)
    row = _steps(session, saga_id)[step]
    started_type, outcome_type = _OUTCOMES[event]
    at = finished_at or now()
    if started_at is not None:
        _event(session, saga, started_type, step=step, attempt=attempt, at=started_at)
    if started_type == E.COMPENSATION_STARTED:  # an undo's run: the step's own state stays as it is
        _event(session, saga, outcome_type, step=step, attempt=attempt, error=error, at=at)
        if outcome_type == E.COMPENSATION_DONE:
            undo = _undo_order(saga)
            if step in undo and undo.index(step) + 1 < len(undo):
                _event(session, saga, E.COMPENSATION_QUEUED, step=undo[undo.index(step) + 1], at=at)
        saga.progressed_at = now()
        return
    if error:
        row.error = error
    if event == "done" and attempt > 0:  # reported by the run that succeeded: its number is the count
        row.attempts = max(row.attempts, attempt)
        if _RANK[StepStatus.DONE] > _RANK[StepStatus(row.status)]:
            row.status = StepStatus.DONE
    else:
        row.attempts = max(row.attempts, attempt)
        _advance(row, StepStatus(event))
    _event(session, saga, outcome_type, step=step, attempt=attempt or row.attempts, error=error, at=at)
    if outcome_type == E.STEP_DONE:
        _queued_after(session, saga, step, at)
    saga.progressed_at = now()
    after_pivot = declaration_of(saga).after_pivot
    if saga.finished_at is None and any(s.name == step for s in after_pivot):
        # The saga is over once every step after its pivot is done or failed for good.
        steps = _steps(session, saga_id)
        if all(steps[s.name].status in (StepStatus.DONE, StepStatus.FAILED) for s in after_pivot):
            saga.finished_at = saga.progressed_at
            saga_finished(session, saga)
            _event(session, saga, E.SAGA_COMPLETED, at=saga.finished_at)


def redrive(session: Session, saga: Saga, actor: str) -> None:
    """Queue the saga to be published again, as its state asks (the caller holds its row lock)."""
    if saga.finished_at is not None:
        raise SagaFinished(f"saga {saga.id} is over ({saga.status})")
    if saga_expires(saga.created_at) <= now():
        raise SagaPastDeadline(f"saga {saga.id} is past its deadline ({saga_expires(saga.created_at):%Y-%m-%d %H:%M} UTC)")
    kind = _REDRIVE[SagaStatus(saga.status)]
    session.add(OutboxMessage(saga_id=saga.id, kind=kind))
    saga.redrive_count += 1
    saga.progressed_at = now()
    _event(session, saga, E.REDRIVEN, attempt=saga.redrive_count, actor=actor, detail=f"{saga.status}: publishes {_REDRIVE_WHAT[kind]}")


# What a stalled saga publishes again, by its state.
_REDRIVE = {
    SagaStatus.RUNNING: OutboxKind.START,
    SagaStatus.COMPENSATING: OutboxKind.COMPENSATE,
    SagaStatus.COMPLETED: OutboxKind.AFTER_PIVOT,
}
_REDRIVE_WHAT = {
    OutboxKind.START: "its steps",
    OutboxKind.COMPENSATE: "its compensation",
    OutboxKind.AFTER_PIVOT: "its steps after the pivot",
}


def mark_attention(session: Session, saga: Saga, actor: str, note: str | None) -> bool:
    """Mark the saga as needing an operator (the caller holds its row lock); False if it already was."""
    if saga.needs_attention:
        return False
    saga.needs_attention = True
    saga.attention_note = note
    number = history.next_number(session, saga.id, E.ATTENTION_MARKED)
    history.record(session, saga.id, E.ATTENTION_MARKED, attempt=number, actor=actor, detail=note, round=saga.redrive_count)
    return True


def clear_attention(session: Session, saga: Saga, actor: str) -> bool:
    """An operator dealt with it (the caller holds its row lock); False if it was not marked."""
    if not saga.needs_attention:
        return False
    saga.needs_attention = False
    saga.attention_note = None
    number = history.next_number(session, saga.id, E.ATTENTION_CLEARED)
    history.record(session, saga.id, E.ATTENTION_CLEARED, attempt=number, actor=actor, round=saga.redrive_count)
    return True


def wait_for_final(make_session: sessionmaker[Session], saga_id: uuid.UUID, timeout: float) -> str:
    """Poll the saga's status until it is final or the timeout passes; return the last status.

    The first look comes after ``FIRST_LOOK_SECONDS`` (a saga takes tens of milliseconds: a look at
    once only finds it running), then less and less often; each look is one select on a pooled
    connection of the read engine, no ORM session.
    """
    reads: Engine = make_session.kw["bind"]
    deadline = time.monotonic() + timeout
    delay = FIRST_LOOK_SECONDS
    while True:
        time.sleep(max(0.0, min(delay, deadline - time.monotonic())))
        status = queries.saga_status(reads, saga_id)
        if status in FINAL or time.monotonic() >= deadline:
            return str(status)
        delay = min(delay * 1.5, 0.1)
