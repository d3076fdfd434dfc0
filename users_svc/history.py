"""The saga history: append-only events, each written in the transaction that moves the state it describes."""

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

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
    """Append an event, unless one with the same (saga, type, step, attempt, round) is there (a redelivery)."""
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
    session.execute(insert(SagaEvent).values(**values).on_conflict_do_nothing())


def next_number(session: Session, saga_id: uuid.UUID, type: SagaEventType) -> int:
    """The ``attempt`` of an event that may repeat (an operator's action): one more than so far.

    The caller holds the saga row's lock, so two actions never take the same number.
    """
    count = session.scalar(select(func.count()).select_from(SagaEvent).where(SagaEvent.saga_id == saga_id, SagaEvent.type == type.value))
    return int(count or 0) + 1
