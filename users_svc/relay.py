"""The outbox relay and saga watchdog: one small loop beside the users API.

Publishes outbox messages the API could not publish (Redis down, process died after commit),
re-drives sagas that stopped moving (a lost message, a worker killed outright), so no saga
waits on the broker's visibility timeout, and starts the purge of deleted accounts whose
restore period ended. Run: python -m users_svc.relay
"""

from functools import partial

from prometheus_client import REGISTRY

from saga import QueueDepthCollector, drain, run_relay, serve_metrics

from . import outbox, watchdog
from .config import get_settings
from .db import make_sessionmaker
from .metrics import SagaLogCollector
from .tasks import celery_app


def main() -> None:
    settings = get_settings()
    make_session = make_sessionmaker(settings.database_url)
    if settings.relay_metrics_port is not None:
        REGISTRY.register(SagaLogCollector(make_session))
        REGISTRY.register(QueueDepthCollector(settings.broker_url))
        serve_metrics(settings.relay_metrics_port, settings.metrics_address)

    def one_pass() -> None:
        watchdog.start_due_purges(make_session)
        watchdog.redrive_stale(make_session, settings.saga_stale_after_seconds, attention_after=settings.saga_attention_after_redrives)
        drain(partial(outbox.publish_outbox, make_session, celery_app, None))

    run_relay(
        f"users relay (sagas stale after {settings.saga_stale_after_seconds:.0f}s)",
        one_pass,
        settings.relay_interval_seconds,
        settings.relay_heartbeat_file,
    )


if __name__ == "__main__":
    main()
