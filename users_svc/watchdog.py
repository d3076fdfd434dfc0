"""The watchdog: re-drives sagas that stopped moving, and starts the purges that are due.

A lost message or a worker killed outright leaves a saga without progress; the watchdog queues it
to be published again (backing off per re-drive), so no saga waits on the broker's visibility
timeout. Deterministic task ids and idempotent steps make a re-driven saga safe.
"""

import logging

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, sessionmaker

from saga import SAGA_REDRIVES, SagaKind, count_after_commit

from .engine import now, start_saga
from .models import AccountStatus, OutboxKind, OutboxMessage, Saga, SagaStatus, UserAccount

log = logging.getLogger(__name__)

# What a stalled saga publishes again, by its state.
_REDRIVE = {
    SagaStatus.RUNNING: OutboxKind.START,
    SagaStatus.COMPENSATING: OutboxKind.COMPENSATE,
    SagaStatus.COMPLETED: OutboxKind.AFTER_PIVOT,
}


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
    with make_session.begin() as session:
        sagas = session.scalars(query).all()
        for saga in sagas:
            log.warning("saga=%s stalled while %s; re-driving (%d)", saga.id, saga.status, saga.redrive_count + 1)
            session.add(OutboxMessage(saga_id=saga.id, kind=_REDRIVE[SagaStatus(saga.status)]))
            saga.redrive_count += 1
            count_after_commit(session, SAGA_REDRIVES, saga.kind, str(saga.status))
            saga.progressed_at = now()
    return len(sagas)


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
