"""The idempotency ledger each service keeps for the saga steps it performs.

A row per (saga id, step) records that the step was done or compensated. A redelivered step
finds its row and does nothing; a step delivered after its compensation finds the tombstone
and refuses, so a late duplicate cannot resurrect what the saga already undid.
"""

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, String, Uuid, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, Session, mapped_column


class LedgerState(StrEnum):
    DONE = "done"
    COMPENSATED = "compensated"


class SagaAborted(Exception):
    """The step arrived after the saga compensated it: a permanent failure."""


class StepLedgerMixin:
    saga_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    step: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    # Indexed: the retention job prunes rows by the age of their last change.
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), index=True)


def claim_step(session: Session, ledger: type[StepLedgerMixin], saga_id: uuid.UUID, step: str) -> bool:
    """Record the step as done in the caller's transaction; False if it already was.

    Concurrent deliveries serialise on the primary key: the second waits for the first to
    commit and then sees its row.
    """
    inserted = session.execute(
        insert(ledger).values(saga_id=saga_id, step=step, state=LedgerState.DONE).on_conflict_do_nothing().returning(ledger.step)
    ).first()
    if inserted:
        return True
    state = session.scalar(select(ledger.state).where(ledger.saga_id == saga_id, ledger.step == step))
    if state == LedgerState.COMPENSATED:
        raise SagaAborted(f"saga {saga_id}: {step} was already compensated")
    return False


def tombstone_step(session: Session, ledger: type[StepLedgerMixin], saga_id: uuid.UUID, step: str) -> None:
    """Mark the step compensated, whether or not it ever ran."""
    stmt = insert(ledger).values(saga_id=saga_id, step=step, state=LedgerState.COMPENSATED)
    session.execute(stmt.on_conflict_do_update(index_elements=[ledger.saga_id, ledger.step], set_={"state": LedgerState.COMPENSATED}))


def compensate_step(session: Session, ledger: type[StepLedgerMixin], saga_id: uuid.UUID, step: str) -> bool:
    """Tombstone the step; True if it was done and not compensated yet, so the caller undoes it now.

    A compensation delivered twice, or one for a step that never ran, finds nothing to undo.
    The row lock makes a concurrent duplicate wait and then see the tombstone.
    """
    state = session.scalar(select(ledger.state).where(ledger.saga_id == saga_id, ledger.step == step).with_for_update())
    tombstone_step(session, ledger, saga_id, step)
    return state == LedgerState.DONE
