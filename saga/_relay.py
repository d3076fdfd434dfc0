"""The relay loop every service's outbox relay runs: a pass, a heartbeat, a pause, until SIGTERM."""

import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path

from ._service import configure_logging

log = logging.getLogger("saga.relay")

BATCH = 100


def drain(publish: Callable[[int], int], batch: int = BATCH) -> None:
    """Publish in batches until a batch comes back short (nothing left, or the broker failed)."""
    while publish(batch) == batch:
        pass


def run_relay(name: str, one_pass: Callable[[], None], interval_seconds: float, heartbeat_file: Path | None) -> None:
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
