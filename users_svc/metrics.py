"""The users service's saga metrics: durations counted by the engine, and the state of the saga log read at scrape time."""

import logging
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from saga import SAGA_DURATION, after_commit

from .models import OutboxMessage, Saga

log = logging.getLogger(__name__)


def saga_finished(session: Session, saga: Saga) -> None:
    """Observe the saga's duration once its end commits; a saga that had already ended (a redelivered event) is not observed again."""
    earlier = inspect(saga).attrs.finished_at.history.deleted
    if saga.finished_at is None or (earlier and earlier[0] is not None):
        return
    histogram = SAGA_DURATION.labels(saga.kind, str(saga.status))
    seconds = max((saga.finished_at - saga.created_at).total_seconds(), 0.0)
    after_commit(session, lambda: histogram.observe(seconds))


class SagaLogCollector(Collector):
    """The outbox's backlog, the unfinished sagas and those needing attention, queried when Prometheus scrapes."""

    def __init__(self, make_session: sessionmaker[Session]) -> None:
        self.make_session = make_session

    def collect(self) -> Any:
        waiting = GaugeMetricFamily("saga_outbox_waiting", "Outbox messages not yet published to the broker")
        oldest = GaugeMetricFamily("saga_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox message (0: none)")
        unfinished = GaugeMetricFamily("sagas_unfinished", "Sagas not finished, by kind and status", labels=["kind", "status"])
        unfinished_age = GaugeMetricFamily(
            "sagas_unfinished_oldest_age_seconds", "Age of the oldest unfinished saga, by kind and status", labels=["kind", "status"]
        )
        attention = GaugeMetricFamily("sagas_needing_attention", "Sagas an operator or the watchdog marked as needing attention")
        age = func.coalesce(func.extract("epoch", func.now() - func.min(OutboxMessage.created_at)), 0)
        try:
            with self.make_session() as session:
                count, seconds = session.execute(select(func.count(), age).where(OutboxMessage.published_at.is_(None))).one()
                rows = session.execute(
                    select(Saga.kind, Saga.status, func.count(), func.extract("epoch", func.now() - func.min(Saga.created_at)))
                    .where(Saga.finished_at.is_(None))
                    .group_by(Saga.kind, Saga.status)
                ).all()
                # The column comes with the saga history (issue 11); without it, no such gauge.
                needs_attention = getattr(Saga, "needs_attention", None)
                marked = session.scalar(select(func.count()).where(needs_attention)) if needs_attention is not None else None
        except Exception as exc:  # the database down: no saga metrics this scrape, the rest still answer
            log.warning("saga metrics not read: %r", exc)
            return
        waiting.add_metric([], float(count))
        oldest.add_metric([], float(seconds))
        for kind, status, n, oldest_age in rows:
            unfinished.add_metric([kind, str(status)], float(n))
            unfinished_age.add_metric([kind, str(status)], float(oldest_age))
        yield from (waiting, oldest, unfinished, unfinished_age)
        if marked is not None:
            attention.add_metric([], float(marked))
            yield attention
