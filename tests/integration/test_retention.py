"""The retention job against the real databases: what each service prunes, what it keeps, in
batches, skipping rows in use; and the watchdog abandoning a saga past its deadline.

The pruners are the ones the relays and the profile retention process run (their
``retentions(settings)``); rows are made old by writing their timestamps in the past.
"""

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from emails_svc import relay as emails_relay
from emails_svc.config import get_settings as emails_settings
from profile_svc import retention as profile_retention
from profile_svc.config import get_settings as profile_settings
from saga import SAGA_DEADLINE, Pruner, SagaKind, make_sessionmaker
from tests.stack import Stack
from users_svc import engine, outbox, watchdog
from users_svc import relay as users_relay
from users_svc.config import get_settings as users_settings
from users_svc.models import OutboxMessage, Saga, UserAccount
from users_svc.tasks import celery_app

DAY = 24 * 3600


class Clock:
    """Monotonic time that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sessions(clean: Stack) -> Iterator[dict[str, sessionmaker[Session]]]:
    made = {
        "users": make_sessionmaker(users_settings().database_url),
        "profile": make_sessionmaker(profile_settings().database_url),
        "emails": make_sessionmaker(emails_settings().database_url),
    }
    yield made
    for make_session in made.values():
        make_session.kw["bind"].dispose()


def _pruner(service: str, make_session: sessionmaker[Session], batch: int, clock: Clock, pause: float = 0) -> Pruner:
    retentions = {
        "users": lambda: users_relay.retentions(users_settings()),
        "profile": lambda: profile_retention.retentions(profile_settings()),
        "emails": lambda: emails_relay.retentions(emails_settings()),
    }[service]()
    return Pruner(make_session, retentions, batch=batch, pause_seconds=pause, every_seconds=60, clock=clock)


def _saga(users: sessionmaker[Session]) -> uuid.UUID:
    with users.begin() as session:
        user = UserAccount(email=f"{uuid.uuid4().hex[:8]}@example.com", first_name="A", last_name="B", active=True, password_hash="$x")
        session.add(user)
        session.flush()
        return engine.start_saga(session, user, SagaKind.REGISTRATION).id


def _ledger_row(stack: Stack, service: str, step: str, state: str, age_days: float) -> str:
    saga_id = str(uuid.uuid4())
    stack.query(
        service,
        "INSERT INTO saga_step_log (saga_id, step, state, updated_at) VALUES (%s, %s, %s, now() - %s * interval '1 day')",
        saga_id,
        step,
        state,
        age_days,
    )
    return saga_id


def test_published_outbox_rows_go_in_batches_once_past_their_retention(clean: Stack, sessions: dict) -> None:
    retention_days = users_settings().outbox_retention_seconds / DAY
    saga_id = _saga(sessions["users"])  # its start message: unpublished, kept
    insert = "INSERT INTO outbox_message (saga_id, kind, created_at, published_at) VALUES (%s, 'start', now() - %s * interval '1 day', {})"
    for _ in range(5):
        clean.query("users", insert.format("now() - %s * interval '1 day'"), saga_id, retention_days + 2, retention_days + 1)
    clean.query("users", insert.format("now() - %s * interval '1 day'"), saga_id, retention_days, retention_days - 0.1)  # young
    clean.query("users", insert.format("NULL"), saga_id, retention_days + 30)  # never published: kept however old
    clock = Clock()
    pruner = _pruner("users", sessions["users"], batch=2, clock=clock, pause=1)

    pruned = []
    for tick in (0, 0.5, 0.5, 1, 1, 30, 31):  # seconds passing before each pass
        clock.now += tick
        pruned.append(pruner.one_pass())
    # A batch, a pause, the next; the short batch ends the round until every_seconds (60) passed.
    assert pruned == [2, 0, 2, 1, 0, 0, 0]

    kept = clean.query("users", "SELECT published_at IS NULL FROM outbox_message ORDER BY id")
    assert sorted(row[0] for row in kept) == [False, True, True]


@pytest.mark.parametrize("service", ["profile", "emails"])
def test_ledger_rows_and_tombstones_go_once_past_their_retention(clean: Stack, sessions: dict, service: str) -> None:
    settings = profile_settings() if service == "profile" else emails_settings()
    days = settings.ledger_retention_seconds / DAY
    old = {_ledger_row(clean, service, "create_profile", state, days + 1) for state in ("done", "compensated", "done")}
    young = {_ledger_row(clean, service, "create_profile", state, days - 0.1) for state in ("done", "compensated")}

    pruner = _pruner(service, sessions[service], batch=2, clock=Clock())
    assert sum(pruner.one_pass() for _ in range(3)) == 3

    kept = {str(row[0]) for row in clean.query(service, "SELECT saga_id FROM saga_step_log")}
    assert kept == young
    assert not old & kept


def _message(stack: Stack, status: str, age_days: float) -> int:
    row = stack.query(
        "emails",
        "INSERT INTO message (user_id, kind, saga_id, to_address, to_name, subject, body_text, status, attempts, "
        "created_at, published_at, sent_at) "
        "VALUES (1, 'welcome', %s, 'a@example.com', 'A B', 'Hi', 'Hello', %s, 1, now() - %s * interval '1 day', "
        "now() - %s * interval '1 day', CASE WHEN %s = 'sent' THEN now() END) RETURNING id",
        str(uuid.uuid4()),
        status,
        age_days,
        age_days,
        status,
    )
    return int(row[0][0])  # type: ignore[call-overload]


def test_sent_and_failed_mail_goes_once_past_its_retention_queued_mail_stays(clean: Stack, sessions: dict) -> None:
    days = emails_settings().mail_retention_seconds / DAY
    old_settled = {_message(clean, "sent", days + 1), _message(clean, "failed", days + 1), _message(clean, "sent", days + 300)}
    kept = {_message(clean, "queued", days + 300), _message(clean, "sent", days - 0.1), _message(clean, "failed", days - 0.1)}

    pruner = _pruner("emails", sessions["emails"], batch=1000, clock=Clock())
    assert pruner.one_pass() == 3

    left = {int(row[0]) for row in clean.query("emails", "SELECT id FROM message")}  # type: ignore[call-overload]
    assert left == kept
    assert not old_settled & left


def test_a_batch_skips_rows_another_transaction_holds(clean: Stack, sessions: dict) -> None:
    days = profile_settings().ledger_retention_seconds / DAY
    held, free = (_ledger_row(clean, "profile", "create_profile", "done", days + 1) for _ in range(2))
    with clean.db("profile") as holder:
        holder.autocommit = False
        with holder.cursor() as cur:
            cur.execute("SELECT 1 FROM saga_step_log WHERE saga_id = %s FOR UPDATE", (held,))
            assert _pruner("profile", sessions["profile"], batch=10, clock=Clock()).one_pass() == 1  # no wait for the lock
        holder.rollback()
    assert [str(row[0]) for row in clean.query("profile", "SELECT saga_id FROM saga_step_log")] == [held]
    assert free != held


@pytest.mark.parametrize(
    ("service", "query", "index"),
    [
        ("users", "SELECT id FROM outbox_message WHERE published_at < now() LIMIT 1000", "ix_outbox_message_published_at"),
        ("profile", "SELECT saga_id FROM saga_step_log WHERE updated_at < now() LIMIT 1000", "ix_saga_step_log_updated_at"),
        ("emails", "SELECT saga_id FROM saga_step_log WHERE updated_at < now() LIMIT 1000", "ix_saga_step_log_updated_at"),
        (
            "emails",
            "SELECT id FROM message WHERE status IN ('sent', 'failed') AND created_at < now() LIMIT 1000",
            "ix_message_settled_created_at",
        ),
    ],
)
def test_each_prune_query_can_use_its_index(clean: Stack, service: str, query: str, index: str) -> None:
    # The tables are small here, so the planner is told to avoid a scan whenever an index can serve.
    with clean.db(service) as conn, conn.cursor() as cur:
        cur.execute("SET enable_seqscan = off")
        cur.execute(f"EXPLAIN {query}")
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert index in plan, plan


def test_a_stalled_saga_past_its_deadline_is_abandoned_not_redriven(clean: Stack, sessions: dict) -> None:
    users = sessions["users"]
    overdue, recent = _saga(users), _saga(users)
    assert outbox.publish_outbox(users, celery_app) == 2
    clean.query(
        "users",
        "UPDATE saga SET created_at = now() - %s * interval '1 second' WHERE id = %s",
        SAGA_DEADLINE.total_seconds() + 60,
        str(overdue),
    )

    assert watchdog.redrive_stale(users, stale_after_seconds=0) == 1  # the recent one only

    with users() as session:
        abandoned = session.get_one(Saga, overdue)
        assert abandoned.abandoned_at is not None
        assert abandoned.redrive_count == 0
        assert session.get_one(Saga, recent).abandoned_at is None
        redriven = [m.saga_id for m in session.query(OutboxMessage).filter(OutboxMessage.published_at.is_(None))]
    assert redriven == [recent]
    assert outbox.publish_outbox(users, celery_app) == 1
    assert watchdog.redrive_stale(users, stale_after_seconds=0) == 1  # the recent one again; the abandoned one is not looked at
    with users() as session:
        again = session.get_one(Saga, overdue)
        assert (again.redrive_count, again.abandoned_at) == (0, abandoned.abandoned_at)
