#!/usr/bin/env python3
"""Seed the three databases with a history of N users, loaded in bulk (not through the API).

    .venv/bin/python scripts/bench/seed.py --users 100000      # make run's databases (DEVSTACK_*)
    TEST_PORT_OFFSET=0 .venv/bin/python scripts/bench/seed.py --test-stack --users 100000

EMPTIES the tables first, then writes what N users signed up over the last two years leave
behind: each user with a completed registration saga (its steps, its history and published outbox row), a
profile, every second one a subscription, the address and the sent welcome mail, and each
service's idempotency-ledger rows. Every 50th user also deleted the account a day after signing
up: those older than the restore period were purged (a tombstone, the deletion and purge sagas,
no profile, address or mail left), the recent ones are deleted and restorable (profile
archived, goodbye mail sent, purge due in the future). Rows are made by INSERT ... SELECT over
generate_series inside PostgreSQL, in batches, as the superuser of the devstack's server; then
VACUUM ANALYZE, as autovacuum would have done by then.

Saga ids are md5(kind:user id) as UUIDs, so each database derives the same ids on its own.
"""

# ruff: noqa: S608  # the SQL is made from this file's constants and the mail templates only

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import devstack  # noqa: E402

from saga import SAGAS, DeletionStep, PurgeStep, RegistrationStep, SagaKind  # noqa: E402

HISTORY_DAYS = 730
RESTORE_DAYS = 30  # accounts deleted longer ago than this were purged
DELETED_EVERY = 50
SUBSCRIBED_EVERY = 2
PASSWORD = "x"  # noqa: S105  # every seeded user logs in with it (one hash, made once)
TABLES = {
    "users": ["saga_event", "outbox_message", "saga_step", "saga", "user_account"],
    "profile": ["subscription", "profile", "saga_step_log"],
    "emails": ["message", "recipient", "saga_step_log"],
}

# The users of a batch: id i, signed up at t, spread evenly over the history up to now.
USERS = f"""
    SELECT i, now() - (%(n)s - i + 1) * interval '1 second' * %(spacing)s AS t,
           i %% {DELETED_EVERY} = 0 AS deleted,
           i %% {DELETED_EVERY} = 0
             AND now() - (%(n)s - i + 1) * interval '1 second' * %(spacing)s < now() - interval '{RESTORE_DAYS + 1} days' AS purged
    FROM generate_series(%(lo)s, %(hi)s) AS i
"""
# Deleted a day after signing up, purged when the restore period ended.
DELETED_AT = "t + interval '1 day'"
PURGE_AFTER = f"t + interval '{RESTORE_DAYS + 1} days'"


def _saga_id(kind: str) -> str:
    return f"md5('{kind}:' || i)::uuid"


def _steps_sql(kind: SagaKind, steps: list[str], started: str, where: str) -> str:
    """Each step of the saga done, a few milliseconds apart."""
    values = ", ".join(f"('{step}', {position})" for position, step in enumerate(steps))
    return (
        "INSERT INTO saga_step (saga_id, step, position, status, attempts, error, updated_at) "
        f"SELECT {_saga_id(kind)}, s.step, s.position, 'done', 1, NULL, {started} + s.position * interval '5 ms' "
        f"FROM ({USERS}) u CROSS JOIN (VALUES {values}) AS s(step, position) WHERE {where}"
    )


def _events_sql(kind: SagaKind, steps: list[str], started: str, finished: str, where: str) -> str:
    """The history a completed saga leaves: started; each step queued, started, done; the pivot; completed."""
    pivot = SAGAS[kind].pivot
    rows = [f"('saga_started', NULL, NULL, {started})", f"('saga_completed', NULL, NULL, {finished})"]
    for position, step in enumerate(steps):
        at = f"{started} + interval '{5 * position} ms'"
        rows += [
            f"('step_queued', '{step}', NULL, {at})",
            f"('step_started', '{step}', 1, {at} + interval '1 ms')",
            f"('step_done', '{step}', 1, {at} + interval '4 ms')",
        ]
        if step == pivot:
            rows.append(f"('pivot_passed', '{step}', NULL, {at} + interval '4 ms')")
    return (
        "INSERT INTO saga_event (saga_id, at, type, step, attempt) "
        f"SELECT {_saga_id(kind)}, e.at, e.type, e.step, e.attempt "
        f"FROM ({USERS}) u CROSS JOIN LATERAL (VALUES {', '.join(rows)}) AS e(type, step, attempt, at) WHERE {where}"
    )


def _saga_sql(kind: SagaKind, steps: list[str], started: str, where: str) -> list[str]:
    finished = f"{started} + interval '{5 * len(steps)} ms'"
    return [
        "INSERT INTO saga (id, kind, user_id, status, failed_step, redrive_count, created_at, updated_at, progressed_at, finished_at) "
        f"SELECT {_saga_id(kind)}, '{kind}', i, 'completed', NULL, 0, {started}, {finished}, {finished}, {finished} "
        f"FROM ({USERS}) u WHERE {where}",
        _steps_sql(kind, steps, started, where),
        "INSERT INTO outbox_message (saga_id, kind, created_at, published_at) "
        f"SELECT {_saga_id(kind)}, 'start', {started}, {started} + interval '1 ms' FROM ({USERS}) u WHERE {where}",
        _events_sql(kind, steps, started, finished, where),
    ]


def users_sql(password_hash: str) -> list[str]:
    account = (
        "INSERT INTO user_account (id, email, first_name, last_name, active, password_hash, registration_status, "
        "account_status, deleted_at, purge_after, created_at, updated_at) "
        "SELECT i, CASE WHEN purged THEN 'purged-' || i || '@purged.invalid' ELSE 'seed-' || i || '@example.com' END, "
        "CASE WHEN purged THEN '' ELSE 'Seed' END, CASE WHEN purged THEN '' ELSE 'User ' || i END, true, "
        f"CASE WHEN purged THEN '' ELSE '{password_hash}' END, 'completed', "
        "CASE WHEN purged THEN 'purged' WHEN deleted THEN 'deleted' ELSE 'active' END, "
        f"CASE WHEN deleted THEN {DELETED_AT} END, CASE WHEN deleted THEN {PURGE_AFTER} END, t, "
        f"CASE WHEN purged THEN {PURGE_AFTER} WHEN deleted THEN {DELETED_AT} ELSE t END "
        f"FROM ({USERS}) u"
    )
    return [
        account,
        *_saga_sql(SagaKind.REGISTRATION, list(RegistrationStep), "t", "true"),
        *_saga_sql(SagaKind.DELETION, list(DeletionStep), DELETED_AT, "deleted"),
        *_saga_sql(SagaKind.PURGE, list(PurgeStep), PURGE_AFTER, "purged"),
    ]


def _ledger_sql(kind: SagaKind, step: str, at: str, where: str) -> str:
    return (
        f"INSERT INTO saga_step_log (saga_id, step, state, updated_at) SELECT {_saga_id(kind)}, '{step}', 'done', {at} "
        f"FROM ({USERS}) u WHERE {where}"
    )


def profile_sql() -> list[str]:
    return [
        "INSERT INTO profile (user_id, first_name, last_name, account_type, iban, saga_id, archived_at, created_at, updated_at) "
        f"SELECT i, 'Seed', 'User ' || i, NULL, NULL, {_saga_id(SagaKind.REGISTRATION)}, "
        f"CASE WHEN deleted THEN {DELETED_AT} END, t, t FROM ({USERS}) u WHERE NOT purged",
        "INSERT INTO subscription (user_id, plan, created_at) "
        f"SELECT i, 'basic', t + interval '1 minute' FROM ({USERS}) u WHERE NOT purged AND i %% {SUBSCRIBED_EVERY} = 0",
        _ledger_sql(SagaKind.REGISTRATION, RegistrationStep.CREATE_PROFILE, "t", "true"),
        _ledger_sql(SagaKind.DELETION, DeletionStep.ARCHIVE_PROFILE, DELETED_AT, "deleted"),
    ]


def emails_sql(welcome: tuple[str, str], goodbye: tuple[str, str]) -> list[str]:
    from emails_svc.mailer import GOODBYE_SUBJECT, WELCOME_SUBJECT

    def message(kind: SagaKind, mail_kind: str, subject: str, body: tuple[str, str], at: str, where: str) -> str:
        # Literals in a statement with parameters: their % doubled.
        text, html = (psycopg2.extensions.QuotedString(part).getquoted().decode().replace("%", "%%") for part in body)
        return (
            "INSERT INTO message (user_id, kind, saga_id, to_address, to_name, subject, body_text, body_html, status, attempts, "
            "last_error, smtp_message_id, created_at, published_at, sent_at) "
            f"SELECT i, '{mail_kind}', {_saga_id(kind)}, 'seed-' || i || '@example.com', 'Seed User ' || i, '{subject}', "
            f"{text}, {html}, 'sent', 1, NULL, '<seed-{mail_kind}-' || i || '@example.com>', {at}, {at}, "
            f"{at} + interval '20 ms' FROM ({USERS}) u WHERE {where}"
        )

    return [
        "INSERT INTO recipient (user_id, email, first_name, last_name, saga_id, created_at) "
        f"SELECT i, 'seed-' || i || '@example.com', 'Seed', 'User ' || i, {_saga_id(SagaKind.REGISTRATION)}, t "
        f"FROM ({USERS}) u WHERE NOT deleted",
        # A purge deletes every message to the user; the others keep theirs.
        message(SagaKind.REGISTRATION, "welcome", WELCOME_SUBJECT, welcome, "t + interval '10 ms'", "NOT purged"),
        message(SagaKind.DELETION, "goodbye", GOODBYE_SUBJECT, goodbye, DELETED_AT, "deleted AND NOT purged"),
        _ledger_sql(SagaKind.REGISTRATION, RegistrationStep.RECORD_ADDRESS, "t", "true"),
        _ledger_sql(SagaKind.DELETION, DeletionStep.ERASE_ADDRESS, DELETED_AT, "deleted"),
    ]


def superuser_url(config: devstack.Stack, service: str) -> str:
    """The service's database as the devstack's superuser (it owns nothing, but may write anything)."""
    url = config.database_url(service).replace("postgresql+psycopg2://", "postgresql://")
    if os.environ.get("DEVSTACK_DATABASE_URL"):
        return url  # a server of your own: its URL's user must be allowed to write every table
    return url.replace(f"{devstack.service_role(service)}@", "app@")


def seed(config: devstack.Stack, users: int, *, batch: int = 50_000, progress: bool = True) -> dict[str, float]:
    """Empty the tables and load the history; seconds taken per database."""
    from datetime import UTC, datetime

    from argon2 import PasswordHasher

    from emails_svc import mailer
    from users_svc.config import Settings

    defaults = Settings(database_url="-", broker_url="-")
    password_hash = PasswordHasher(
        time_cost=defaults.argon2_time_cost, memory_cost=defaults.argon2_memory_cost_kib, parallelism=defaults.argon2_parallelism
    ).hash(PASSWORD)
    statements = {
        "users": users_sql(password_hash),
        "profile": profile_sql(),
        "emails": emails_sql(
            mailer.render_welcome("Seed", "seed@example.com"), mailer.render_goodbye("Seed", "seed@example.com", datetime.now(UTC))
        ),
    }
    spacing = HISTORY_DAYS * 86400 / max(users, 1)
    timings: dict[str, float] = {}
    for service, sqls in statements.items():
        started = time.monotonic()
        conn = psycopg2.connect(superuser_url(config, service))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"TRUNCATE {', '.join(TABLES[service])} RESTART IDENTITY CASCADE")
            for lo in range(1, users + 1, batch):
                hi = min(users, lo + batch - 1)
                with conn:  # one transaction per batch
                    conn.autocommit = False
                    for sql in sqls:
                        cur.execute(sql, {"lo": lo, "hi": hi, "n": users, "spacing": spacing})
                conn.autocommit = True
                if progress:
                    print(f"seed: {service} {hi}/{users} users ({time.monotonic() - started:.0f} s)", flush=True)
            if service == "users":  # registrations through the API continue after the seeded ids
                cur.execute("SELECT setval(pg_get_serial_sequence('user_account', 'id'), greatest(max(id), 1)) FROM user_account")
            for table in TABLES[service]:
                cur.execute(f"VACUUM ANALYZE {table}")
        conn.close()
        timings[service] = time.monotonic() - started
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, required=True, help="how many users of history (0 empties the tables)")
    parser.add_argument("--batch", type=int, default=50_000, help="users per transaction")
    parser.add_argument("--test-stack", action="store_true", help="the test stack's databases (TEST_PORT_OFFSET), not make run's")
    args = parser.parse_args()
    if args.test_stack:
        from tests.stack import TEST_PORTS

        os.environ.update(TEST_PORTS)
    started = time.monotonic()
    timings = seed(devstack.Stack(), args.users, batch=args.batch)
    print(
        f"seed: {args.users} users in {time.monotonic() - started:.0f} s ("
        + ", ".join(f"{service} {seconds:.0f} s" for service, seconds in timings.items())
        + ")"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
