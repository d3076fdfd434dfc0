"""The saga history: append-only events, each written in the transaction that moves the state it describes.

A transaction's events are written together, in one INSERT when the session flushes (and at the
latest before it commits): a pivot records about ten, one round trip each cost the users worker a
quarter of its time.
"""

import uuid
from datetime import UTC, datetime

from sqlalchemy import event, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, UOWTransaction

from .models import SagaEvent, SagaEventType


def record(
    session: Session,
    saga_id: uuid.UUID,
    type: SagaEventType,
    *,
    step: str | None = None,
    attempt: int | None = None,
    error: str | None = None,
    actor: str | None = None,
    detail: str | None = None,
    at: datetime | None = None,
    round: int = 0,
) -> None:
    """Append an event, unless one with the same (saga, type, step, attempt, round) is there (a
    redelivery), with the session's next flush."""
    values: dict[str, object] = {
        # The moment it happened, not the transaction's start (several events share a transaction).
        "at": at or datetime.now(UTC),
        "round": round,
        "saga_id": saga_id,
        "type": type.value,
        "step": step,
        "attempt": attempt,
        "error": error,
        "actor": actor,
        "detail": detail,
    }
    session.info.setdefault(_PENDING, []).append(values)


_PENDING = "saga_events"  # in Session.info: the events recorded since the last write
# Built once, so it is compiled once; RETURNING lets SQLAlchemy send the rows in one statement
# ("insertmanyvalues"), which it does not do for ON CONFLICT without it.
_INSERT_EVENTS = insert(SagaEvent).on_conflict_do_nothing().returning(SagaEvent.id)


def write_pending(session: Session) -> None:
    """Write the events recorded so far, in one INSERT on the session's connection."""
    pending = session.info.pop(_PENDING, None)
    if pending:
        session.connection().execute(_INSERT_EVENTS, pending)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    write_pending(session)  # after the rows they refer to (a new saga)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    session.flush()  # fires after_flush when anything was dirty
    write_pending(session)  # and when nothing was


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def next_number(session: Session, saga_id: uuid.UUID, type: SagaEventType) -> int:
    """The ``attempt`` of an event that may repeat (an operator's action): one more than so far.

    The caller holds the saga row's lock, so two actions never take the same number.
    """
    write_pending(session)
    count = session.scalar(select(func.count()).select_from(SagaEvent).where(SagaEvent.saga_id == saga_id, SagaEvent.type == type.value))
    return int(count or 0) + 1
