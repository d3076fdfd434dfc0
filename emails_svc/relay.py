"""The emails relay: publishes the delivery of messages the fast path could not publish, and prunes
ledger rows and sent or failed mail past their retention.

Run: python -m emails_svc.relay
"""

from functools import partial

from saga import Pruner, Retention, create_celery_app, drain, make_sessionmaker, run_relay

from .config import Settings, get_settings
from .models import DeliveryStatus, Message, SagaStepLog
from .outbox import publish_pending

SETTLED = (DeliveryStatus.SENT, DeliveryStatus.FAILED)  # the predicate of ix_message_settled_created_at


def retentions(settings: Settings) -> list[Retention]:
    """What the relay prunes: ledger rows by their last change, sent and failed mail by when it was written."""
    return [
        Retention(SagaStepLog, lambda cutoff: SagaStepLog.updated_at < cutoff, settings.ledger_retention_seconds),
        Retention(Message, lambda cutoff: Message.status.in_(SETTLED) & (Message.created_at < cutoff), settings.mail_retention_seconds),
    ]


def main() -> None:
    settings = get_settings()
    make_session = make_sessionmaker(settings.database_url)
    celery_app = create_celery_app("emails", settings.broker_url)
    pruner = Pruner(make_session, retentions(settings))

    def one_pass() -> None:
        drain(partial(publish_pending, make_session, celery_app, None))
        pruner.one_pass()

    run_relay("emails relay", one_pass, settings.relay_interval_seconds, settings.relay_heartbeat_file)


if __name__ == "__main__":
    main()
