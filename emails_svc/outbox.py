"""Publishing queued messages: the fast path right after the commit, and the relay (``relay.py``) for what it could not publish."""

from celery import Celery
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from saga import TaskName, publish_rows

from .models import Message


def publish_pending(make_session: sessionmaker[Session], app: Celery, message_id: int | None = None, limit: int = 100) -> int:
    with make_session.begin() as session:
        query = select(Message).where(Message.published_at.is_(None)).order_by(Message.id).limit(limit)
        if message_id is not None:
            query = query.where(Message.id == message_id)
        return publish_rows(
            session,
            query,
            lambda message: app.send_task(str(TaskName.DELIVER_MESSAGE), args=(message.id,), retry=False),
            lambda message: f"message {message.id}",
        )
