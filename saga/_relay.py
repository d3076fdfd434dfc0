"""The relay loop every service's outbox relay runs: a pass, a heartbeat, a pause, until SIGTERM."""

import logging
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

from ._service import configure_logging

log = logging.getLogger("saga.relay")

BATCH = 100


class _Publishable(Protocol):
    published_at: datetime | None


Row = TypeVar("Row", bound=_Publishable)


def publish_rows(session: Session, unpublished: Select[Row], publish: Callable[[Row], None], describe: Callable[[Row], str]) -> int:
    """Publish each unpublished outbox row and mark it; stop at the first broker error and keep the rest.

    Rows are locked with SKIP LOCKED, so a fast path and a relay never publish the same row at once.
    """
    published = 0
    for row in session.scalars(unpublished.with_for_update(skip_locked=True)).all():
        try:
            publish(row)
        except Exception as exc:  # broker down: the relay tries again
            log.warning("%s publish failed, will retry: %r", describe(row), exc)
            break
        row.published_at = datetime.now(UTC)
        published += 1
    return published


def drain(publish: Callable[[int], int], batch: int = BATCH) -> None:
    """Publish in batches until a batch comes back short (nothing left, or the broker failed)."""
    while publish(batch) == batch:
        pass


def run_relay(name: str, one_pass: Callable[[], object], interval_seconds: float, heartbeat_file: Path | None) -> None:
    """Run ``one_pass`` every ``interval_seconds``; a failed pass (the database down) is logged and retried."""
    configure_logging()
    running = True

    def stop(*_: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("%s started (every %.1fs)", name, interval_seconds)
    while running:
        try:
            one_pass()
        except Exception:  # the database may be down: keep looping, it comes back
            log.exception("%s pass failed", name)
        if heartbeat_file:
            heartbeat_file.touch()
        time.sleep(interval_seconds)
    log.info("%s stopped", name)
