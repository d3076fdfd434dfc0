"""The outbox relay and saga watchdog: one small loop beside the users API.

Publishes outbox messages the API could not publish (Redis down, process died after commit),
re-drives sagas that stopped moving (a lost message, a worker killed outright), so no saga
waits on the broker's visibility timeout, and starts the purge of deleted accounts whose
restore period ended. Run: python -m users_svc.relay
"""

import logging
import signal
import time

from saga import configure_logging

from . import outbox, watchdog
from .config import get_settings
from .db import make_sessionmaker
from .tasks import celery_app

log = logging.getLogger("users_svc.relay")


def main() -> None:
    configure_logging()
    settings = get_settings()
    make_session = make_sessionmaker(settings.database_url)
    running = True

    def stop(*_: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("relay started (every %.1fs; sagas stale after %.0fs)", settings.relay_interval_seconds, settings.saga_stale_after_seconds)
    while running:
        try:
            watchdog.start_due_purges(make_session)
            watchdog.redrive_stale(make_session, settings.saga_stale_after_seconds)
            while outbox.publish_outbox(make_session, celery_app) == 100:
                pass
        except Exception:  # the database may be down: keep looping, it comes back
            log.exception("relay pass failed")
        if settings.relay_heartbeat_file:
            settings.relay_heartbeat_file.touch()
        time.sleep(settings.relay_interval_seconds)
    log.info("relay stopped")


if __name__ == "__main__":
    main()
