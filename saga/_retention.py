"""Retention: how long a saga's messages may run, and the job that prunes rows kept past their use.

The guarantee it protects (docs/architecture.md, "Retention"): a ledger row or a mail record
must outlive every delivery of its step. Every message of a saga expires ``SAGA_DEADLINE`` after
the saga started (Celery discards it unrun, and the watchdog stops re-driving the saga and marks
it for an operator). Those rows are written after their saga started and pruned only once
their last change is older than their retention, which may not be shorter than
``IDEMPOTENCY_RETENTION_MIN``: longer than the deadline, so every message that can still run
finds the row its step left.

The pruning runs in the services' relay loops (``run_relay``): one short transaction per table
deletes at most ``PRUNE_BATCH`` rows, skipping rows another transaction holds, then that table
pauses ``PRUNE_PAUSE_SECONDS`` (or the relay's interval, if longer), so that a large backlog is
pruned slowly rather than taking the database's time from registrations; a table whose batch
comes back short is next pruned ``PRUNE_EVERY_SECONDS`` later.
"""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator
from sqlalchemy import ColumnElement, any_, delete, func, inspect, literal_column, select
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("saga.retention")

# A saga's messages (steps, compensations, re-drives) run only this long after it started.
SAGA_DEADLINE = timedelta(days=7)
# Rows that make a step idempotent are kept longer than the deadline; the day covers clocks
# that disagree between the users database (which dates the saga) and the workers.
IDEMPOTENCY_RETENTION_MIN = SAGA_DEADLINE + timedelta(days=1)

PRUNE_BATCH = 500
PRUNE_PAUSE_SECONDS = 1.0
PRUNE_EVERY_SECONDS = 300.0


def _outlives_the_deadline(seconds: int) -> int:
    if seconds < IDEMPOTENCY_RETENTION_MIN.total_seconds():
        raise ValueError(
            f"must be at least {IDEMPOTENCY_RETENTION_MIN.total_seconds():.0f} ({IDEMPOTENCY_RETENTION_MIN.days} days): "
            f"these rows keep a step from running twice, and a saga's messages run for {SAGA_DEADLINE.days} days"
        )
    return seconds


IdempotencyRetentionSeconds = Annotated[int, AfterValidator(_outlives_the_deadline)]
"""A setting: how long rows that make a step idempotent (ledger rows, mail records) are kept; refused below the minimum."""


def saga_expires(started_at: datetime) -> datetime:
    """When every message of a saga started at ``started_at`` expires."""
    return started_at + SAGA_DEADLINE


@dataclass(frozen=True)
class Retention:
    """Rows of ``model`` that ``prunable(cutoff)`` selects go once ``cutoff`` (now minus ``keep_seconds``) passed them.

    ``prunable`` should be served by an index (the rows' timestamp), so a batch reads no more than it deletes.
    """

    model: type[Any]  # a mapped class
    prunable: Callable[[ColumnElement[datetime]], ColumnElement[bool]]
    keep_seconds: float

    @property
    def name(self) -> str:
        return str(inspect(self.model).local_table.name)


def prune_batch(session: Session, retention: Retention, limit: int = PRUNE_BATCH) -> int:
    """Delete up to ``limit`` prunable rows in the caller's transaction; rows locked elsewhere are skipped.

    ``DELETE ... WHERE ctid = ANY(ARRAY(SELECT ctid ... LIMIT n FOR UPDATE SKIP LOCKED))``: the rows
    chosen are locked, then deleted by their physical address (a TID scan), whatever the table's key.
    """
    ctid: ColumnElement[str] = literal_column("ctid")
    # The database's clock, the one that dated the rows.
    cutoff = func.now() - timedelta(seconds=retention.keep_seconds)
    doomed = select(ctid).select_from(retention.model).where(retention.prunable(cutoff)).limit(limit).with_for_update(skip_locked=True)
    result = session.execute(delete(retention.model).where(ctid == any_(func.ARRAY(doomed.scalar_subquery()))))
    return int(result.rowcount)  # type: ignore[attr-defined]  # a DELETE's CursorResult


class Pruner:
    """Prunes each table a batch at a time, ``pause_seconds`` apart while it has a backlog, then every ``every_seconds``."""

    def __init__(
        self,
        make_session: sessionmaker[Session],
        retentions: Sequence[Retention],
        batch: int = PRUNE_BATCH,
        pause_seconds: float = PRUNE_PAUSE_SECONDS,
        every_seconds: float = PRUNE_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._make_session = make_session
        self._retentions = retentions
        self._batch = batch
        self._pause_seconds = pause_seconds
        self._every_seconds = every_seconds
        self._clock = clock
        self._due = dict.fromkeys(range(len(retentions)), 0.0)
        self._pruned = dict.fromkeys(range(len(retentions)), 0)

    def one_pass(self) -> int:
        """A batch for every table that is due; the rows deleted."""
        total = 0
        for i, retention in enumerate(self._retentions):
            if self._clock() < self._due[i]:
                continue
            with self._make_session.begin() as session:
                pruned = prune_batch(session, retention, self._batch)
            total += pruned
            self._pruned[i] += pruned
            if pruned == self._batch:  # a backlog: the next batch after the pause
                self._due[i] = self._clock() + self._pause_seconds
                continue
            if self._pruned[i]:
                days = retention.keep_seconds / 86400
                log.info("pruned %d rows of %s older than %g days", self._pruned[i], retention.name, days)
            self._pruned[i] = 0
            self._due[i] = self._clock() + self._every_seconds  # caught up: again later
        return total
