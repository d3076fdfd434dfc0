"""Retention's rules that need no database: every saga message carries its deadline, and no
setting may keep idempotency rows for less than a saga's messages live."""

from datetime import UTC, datetime, timedelta

import pytest
from celery import Celery
from pydantic import ValidationError

from emails_svc.config import Settings as EmailsSettings
from profile_svc.config import Settings as ProfileSettings
from saga import (
    DELETION,
    IDEMPOTENCY_RETENTION_MIN,
    REGISTRATION,
    SAGA_DEADLINE,
    RegistrationPayload,
    RegistrationStep,
    create_celery_app,
    saga_expires,
)

SAGA_ID = "5b0c1f1e-0000-4000-8000-000000000001"
PAYLOAD = RegistrationPayload(user_id=7, email="a@example.com", first_name="A", last_name="B").model_dump()
STARTED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def app() -> Celery:
    return create_celery_app("test", "redis://127.0.0.1:1/0")


def _every_signature(signature: dict) -> list[dict]:
    """The signature, the steps of a chain, and every errback chain, recursively."""
    found = []
    for sig in signature["kwargs"]["tasks"] if signature["task"] == "celery.chain" else [signature]:
        found.append(sig)
        for errback in sig["options"].get("link_error", []):
            found.extend(_every_signature(errback))
    return found


def test_the_deadline_is_shorter_than_the_shortest_retention_allowed() -> None:
    assert saga_expires(STARTED) == STARTED + SAGA_DEADLINE
    assert IDEMPOTENCY_RETENTION_MIN > SAGA_DEADLINE


def test_every_message_a_saga_publishes_expires_at_its_deadline(app: Celery) -> None:
    expires = saga_expires(STARTED)
    chains = [
        REGISTRATION.saga(app, SAGA_ID, PAYLOAD, expires),
        REGISTRATION.after_pivot_chain(app, SAGA_ID, PAYLOAD, expires),
        REGISTRATION.compensation_chain(app, SAGA_ID, PAYLOAD, RegistrationStep.COMPLETE_REGISTRATION, expires),
        DELETION.saga(app, SAGA_ID, {**PAYLOAD, "restore_until": STARTED.isoformat()}, expires),
    ]
    for chain in chains:
        signatures = _every_signature(dict(chain))
        assert signatures
        assert all(sig["options"]["expires"] == expires for sig in signatures), [sig["task"] for sig in signatures]


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        (ProfileSettings, "ledger_retention_seconds"),
        (EmailsSettings, "ledger_retention_seconds"),
        (EmailsSettings, "mail_retention_seconds"),
    ],
)
def test_an_idempotency_retention_shorter_than_the_minimum_is_refused(settings: type, field: str) -> None:
    too_short = int((IDEMPOTENCY_RETENTION_MIN - timedelta(seconds=1)).total_seconds())
    with pytest.raises(ValidationError, match="these rows keep a step from running twice"):
        settings(database_url="-", broker_url="-", **{field: too_short})
    enough = int(IDEMPOTENCY_RETENTION_MIN.total_seconds())
    assert getattr(settings(database_url="-", broker_url="-", **{field: enough}), field) == enough
    assert getattr(settings(database_url="-", broker_url="-"), field) == 30 * 24 * 3600
