"""The watchdog: re-drives sagas that stopped moving, and starts the purges that are due.

A lost message or a worker killed outright leaves a saga without progress; the watchdog queues it
to be published again (backing off per re-drive), so no saga waits on the broker's visibility
timeout. Deterministic task ids and idempotent steps make a re-driven saga safe, for as long as
the other services keep their ledger rows: so a saga past its deadline (``saga.SAGA_DEADLINE``,
when its messages expire) is not re-driven but marked abandoned, for an operator.
"""

import logging

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, sessionmaker

from saga import SAGA_REDRIVES, SagaKind, count_after_commit

from .engine import SagaPastDeadline, mark_attention, now, redrive, start_saga
from .models import AccountStatus, OutboxMessage, Saga, SagaStatus, UserAccount

log = logging.getLogger(__name__)

WATCHDOG = "watchdog"  # the actor of what the watchdog does, in the saga's history


def redrive_stale(make_session: sessionmaker[Session], stale_after_seconds: float, limit: int = 100, attention_after: int = 3) -> int:
    """Queue sagas that stopped moving to be published again (backing off per re-drive).

    A compensation re-driven ``attention_after`` times without finishing is marked as needing
    attention: it keeps failing, and an operator has to look (docs/operations.md). A saga past its
    deadline is abandoned instead (its messages expire unrun) and marked as needing attention too.
    """
    unpublished = exists().where(OutboxMessage.saga_id == Saga.id, OutboxMessage.published_at.is_(None))
    wait = func.make_interval(0, 0, 0, 0, 0, 0, stale_after_seconds * func.power(2, func.least(Saga.redrive_count, 5)))
    query = (
        select(Saga)
        .where(
            Saga.finished_at.is_(None),
            # The shortest wait (no re-drive yet) bounds the scan of the partial index of unfinished
            # sagas (ix_saga_unfinished): only the sagas idle that long are read, oldest first.
            Saga.progressed_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, stale_after_seconds),
            Saga.abandoned_at.is_(None),
            Saga.progressed_at < func.now() - wait,
            ~unpublished,
        )
        .order_by(Saga.progressed_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    redriven = 0
    with make_session.begin() as session:
        for saga in session.scalars(query).all():
            try:
                redrive(session, saga, WATCHDOG)
            except SagaPastDeadline:
                log.error("saga=%s abandoned while %s: past its deadline, its messages expire; needs an operator", saga.id, saga.status)
                saga.abandoned_at = now()
                mark_attention(session, saga, WATCHDOG, f"abandoned while {saga.status}: past its deadline, nothing re-drives it")
                continue
            log.warning("saga=%s stalled while %s; re-driven (%d)", saga.id, saga.status, saga.redrive_count)
            redriven += 1
            count_after_commit(session, SAGA_REDRIVES, saga.kind, str(saga.status))
            if saga.status == SagaStatus.COMPENSATING and saga.redrive_count >= attention_after:
                note = f"compensation re-driven {saga.redrive_count} times without finishing"
                if mark_attention(session, saga, WATCHDOG, note):
                    log.error("saga=%s needs attention: %s (failed step %s)", saga.id, note, saga.failed_step)
    return redriven


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
