"""The saga outbox: messages committed with the saga's state, published to the broker afterwards.

The API publishes its own message right after committing (the fast path); the relay publishes
what is left (Redis down, the process died after commit). Rows are locked with SKIP LOCKED, so
the two never publish the same message at once. A message names what to publish, and the
saga's declaration and its effects' payload say how.
"""

import uuid

from celery import Celery
from celery.canvas import Signature
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from saga import publish_rows

from .effects import EFFECTS
from .engine import declaration_of, record_published
from .models import OutboxKind, OutboxMessage, Saga, UserAccount


def signature(session: Session, app: Celery, message: OutboxMessage) -> Signature:
    """What the message publishes: the saga, its compensation, or its steps after the pivot."""
    saga = session.get_one(Saga, message.saga_id)
    user = session.get_one(UserAccount, saga.user_id)
    declaration = declaration_of(saga)
    saga_id = str(saga.id)
    payload = EFFECTS[saga.kind].payload(user)
    if message.kind == OutboxKind.COMPENSATE:
        return declaration.compensation_chain(app, saga_id, payload, saga.failed_step or declaration.pivot)
    if message.kind == OutboxKind.AFTER_PIVOT:
        return declaration.after_pivot_chain(app, saga_id, payload)
    return declaration.saga(app, saga_id, payload)


def publish_outbox(make_session: sessionmaker[Session], app: Celery, saga_id: uuid.UUID | None = None, limit: int = 100) -> int:
    """Publish unpublished outbox messages; stop at the first broker error and keep the rest."""
    with make_session.begin() as session:
        query = select(OutboxMessage).where(OutboxMessage.published_at.is_(None)).order_by(OutboxMessage.id).limit(limit)
        if saga_id is not None:
            query = query.where(OutboxMessage.saga_id == saga_id)

        def publish(message: OutboxMessage) -> None:
            signature(session, app, message).apply_async(retry=False)
            record_published(session, session.get_one(Saga, message.saga_id), OutboxKind(message.kind))

        return publish_rows(session, query, publish, lambda message: f"saga={message.saga_id} outbox")
