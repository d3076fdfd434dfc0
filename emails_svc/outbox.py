"""Publishing queued messages: the API's fast path, and the relay for what it could not publish."""

import logging
import signal
import time
from datetime import UTC, datetime

from celery import Celery
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from saga import TaskName, configure_logging

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


def main() -> None:
    """The relay: python -m emails_svc.outbox"""
    from .config import get_settings
    from .db import make_sessionmaker
    from .tasks import celery_app

    configure_logging()
    settings = get_settings()
    make_session = make_sessionmaker(settings.database_url)
    running = True

    def stop(*_: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("emails relay started")
    while running:
        try:
            while publish_pending(make_session, celery_app) == 100:
                pass
        except Exception:
            log.exception("relay pass failed")
        if settings.relay_heartbeat_file:
            settings.relay_heartbeat_file.touch()
        time.sleep(settings.relay_interval_seconds)


if __name__ == "__main__":
    main()
