"""The outbox relay and saga watchdog: one small loop beside the users API.

Publishes outbox messages the API could not publish (Redis down, process died after commit),
re-drives sagas that stopped moving (a lost message, a worker killed outright), so no saga
waits on the broker's visibility timeout, starts the purge of deleted accounts whose
restore period ended, and prunes published outbox rows past their retention.
Run: python -m users_svc.relay
"""

from functools import partial

from prometheus_client import REGISTRY

from saga import Pruner, QueueDepthCollector, Retention, create_celery_app, drain, make_sessionmaker, run_relay, serve_metrics

from . import outbox, watchdog
from .config import Settings, get_settings
from .metrics import SagaLogCollector
from .models import OutboxMessage


def retentions(settings: Settings) -> list[Retention]:
    """What the relay prunes: outbox rows published longer ago than their retention."""
    return [Retention(OutboxMessage, lambda cutoff: OutboxMessage.published_at < cutoff, settings.outbox_retention_seconds)]


def main() -> None:
    settings = get_settings()
    make_session = make_sessionmaker(settings.database_url)
    celery_app = create_celery_app("users", settings.broker_url)
    pruner = Pruner(make_session, retentions(settings))
    if settings.relay_metrics_port is not None:
        REGISTRY.register(SagaLogCollector(make_session))
        REGISTRY.register(QueueDepthCollector(settings.broker_url))
        serve_metrics(settings.relay_metrics_port, settings.metrics_address)

    def one_pass() -> None:
        watchdog.start_due_purges(make_session)
        watchdog.redrive_stale(make_session, settings.saga_stale_after_seconds, attention_after=settings.saga_attention_after_redrives)
        drain(partial(outbox.publish_outbox, make_session, celery_app, None))
        pruner.one_pass()

    run_relay(
        f"users relay (sagas stale after {settings.saga_stale_after_seconds:.0f}s)",
        one_pass,
        settings.relay_interval_seconds,
        settings.relay_heartbeat_file,
    )


if __name__ == "__main__":
    main()
