"""Publishing queued messages: the fast path right after the commit, and the relay (``relay.py``) for what it could not publish."""

import logging
from datetime import UTC, datetime

from celery import Celery
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from saga import TaskName

from .models import Message

log = logging.getLogger(__name__)


def publish_pending(make_session: sessionmaker[Session], app: Celery, message_id: int | None = None, limit: int = 100) -> int:
    published = 0
    with make_session.begin() as session:
        query = select(Message).where(Message.published_at.is_(None)).order_by(Message.id).limit(limit)
        if message_id is not None:
            query = query.where(Message.id == message_id)
        for message in session.scalars(query.with_for_update(skip_locked=True)).all():
            try:
                app.send_task(str(TaskName.DELIVER_MESSAGE), args=(message.id,), retry=False)
            except Exception as exc:  # broker down: the relay tries again
                log.warning("message %s publish failed, will retry: %r", message.id, exc)
                break
            message.published_at = datetime.now(UTC)
            published += 1
    return published
