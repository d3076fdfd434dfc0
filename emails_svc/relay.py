"""The emails relay: publishes the delivery of messages the fast path could not publish.

Run: python -m emails_svc.relay
"""

from functools import partial

from saga import create_celery_app, drain, make_sessionmaker, run_relay

from .config import get_settings
from .outbox import publish_pending


def main() -> None:
    settings = get_settings()
    make_session = make_sessionmaker(settings.database_url)
    celery_app = create_celery_app("emails", settings.broker_url)
    run_relay(
        "emails relay",
        lambda: drain(partial(publish_pending, make_session, celery_app, None)),
        settings.relay_interval_seconds,
        settings.relay_heartbeat_file,
    )


if __name__ == "__main__":
    main()
