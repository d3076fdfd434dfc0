"""Messages an older release queued still run after a deploy (docs/architecture.md, "Deploys").

Before every saga was declared alike, the registration's compensations and its welcome step took
``(saga_id, user_id)`` and its compensation chains ended with ``users.fail_registration``. Those
chains are built here by task name, as that release built them, and published to the real workers.
Before mail delivery had a queue of its own, the welcome step and ``emails.deliver_message`` were
queued on ``emails``, as these chains still do.
"""

import json
from collections.abc import Iterator

import httpx
import pytest
from celery import Celery, chain
from celery.canvas import Signature
from sqlalchemy.orm import Session, sessionmaker

from saga import RegistrationStep, SagaKind, TaskName, create_celery_app, make_sessionmaker
from tests.stack import Stack, wait_until
from tests.utils.processes import stopped
from tests.utils.registration import saga_of, unique_email, wait_for_saga
from users_svc import engine
from users_svc.config import get_settings
from users_svc.models import OutboxMessage, UserAccount

FORWARD = [
    (RegistrationStep.CREATE_PROFILE, "profile.create_profile", "profile"),
    (RegistrationStep.RECORD_ADDRESS, "emails.record_address", "emails"),
    (RegistrationStep.COMPLETE_REGISTRATION, "users.complete_registration", "users"),
]
UNDO = {
    RegistrationStep.CREATE_PROFILE: ("profile.remove_profile", "profile"),
    RegistrationStep.RECORD_ADDRESS: ("emails.forget_address", "emails"),
}


def _sig(app: Celery, name: str, queue: str, *args: object, task_id: str | None = None) -> Signature:
    options = {"queue": queue, **({"task_id": task_id} if task_id else {})}
    return app.signature(name, args=args, immutable=True, options=options)


def _old_compensation(app: Celery, saga_id: str, user_id: int, failed: RegistrationStep) -> Signature:
    done_before = [step for step, _, _ in FORWARD][: [step for step, _, _ in FORWARD].index(failed)]
    undo = [_sig(app, *UNDO[step], saga_id, user_id) for step in reversed(done_before) if step in UNDO]
    return chain(
        _sig(app, "users.begin_compensation", "users", saga_id, failed.value),
        *undo,
        _sig(app, "users.fail_registration", "users", saga_id),
    )


def _old_registration_chain(app: Celery, saga_id: str, payload: dict[str, object]) -> Signature:
    """The registration saga as the release before the saga declarations published it."""
    user_id = payload["user_id"]
    assert isinstance(user_id, int)
    steps = []
    for step, name, queue in FORWARD:
        args = (saga_id,) if queue == "users" else (saga_id, payload)
        sig = _sig(app, name, queue, *args, task_id=f"{saga_id}:{step}")
        sig.on_error(_old_compensation(app, saga_id, user_id, step))
        steps.append(sig)
    welcome = f"{saga_id}:{RegistrationStep.SEND_WELCOME_EMAIL}"
    return chain(
        *steps,
        _sig(app, "emails.send_welcome_email", "emails", saga_id, user_id, task_id=welcome),
        _sig(app, "users.record_step_event", "users", saga_id, RegistrationStep.SEND_WELCOME_EMAIL.value, "done", None, 0),
    )


@pytest.fixture
def sessions(system: Stack) -> Iterator[sessionmaker[Session]]:
    make_session = make_sessionmaker(get_settings().database_url)
    yield make_session
    make_session.kw["bind"].dispose()


def _registration_published_the_old_way(system: Stack, sessions: sessionmaker[Session], email: str) -> tuple[str, int]:
    """A user and a running registration saga whose chain was published by the old release."""
    with sessions.begin() as session:
        user = UserAccount(email=email, first_name="Old", last_name="Release", active=True, password_hash="$argon2id$x")
        session.add(user)
        session.flush()
        saga = engine.start_saga(session, user, SagaKind.REGISTRATION)
        # The old release published this saga already: the relay must not publish it again.
        session.query(OutboxMessage).filter_by(saga_id=saga.id).update({"published_at": engine.now()})
        saga_id, user_id = str(saga.id), user.id
    payload = {"user_id": user_id, "email": email, "first_name": "Old", "last_name": "Release"}
    _old_registration_chain(create_celery_app("test", system.config.broker_url), saga_id, payload).apply_async()
    return saga_id, user_id


def test_a_registration_queued_by_the_old_release_completes(system: Stack, client: httpx.Client, sessions: sessionmaker[Session]) -> None:
    email = unique_email("old-release")
    saga_id, user_id = _registration_published_the_old_way(system, sessions, email)
    saga = wait_for_saga(client, system, saga_id, "completed")
    assert {step["step"]: step["status"] for step in saga["steps"]} == dict.fromkeys(RegistrationStep, "done")
    assert system.query("profile", "SELECT count(*) FROM profile WHERE user_id = %s", user_id) == [(1,)]
    assert system.query("users", "SELECT registration_status FROM user_account WHERE id = %s", user_id) == [("completed",)]
    assert len(system.mail_to(email)) == 1


def test_a_registration_queued_by_the_old_release_compensates_with_the_old_shapes(
    system: Stack, client: httpx.Client, sessions: sessionmaker[Session]
) -> None:
    email = unique_email(f"fail-{RegistrationStep.COMPLETE_REGISTRATION}")
    saga_id, user_id = _registration_published_the_old_way(system, sessions, email)
    saga = wait_for_saga(client, system, saga_id, "failed")
    steps = {step["step"]: step["status"] for step in saga["steps"]}
    assert steps == {
        "create_profile": "compensated",
        "record_address": "compensated",
        "complete_registration": "failed",
        "send_welcome_email": "skipped",
    }
    assert system.query("profile", "SELECT count(*) FROM profile WHERE user_id = %s", user_id) == [(0,)]
    assert system.query("emails", "SELECT count(*) FROM recipient WHERE user_id = %s", user_id) == [(0,)]
    assert system.query("users", "SELECT registration_status FROM user_account WHERE id = %s", user_id) == [("failed",)]
    assert saga_of(client, system, saga_id)["status"] == "failed"


def _unqueue_delivery(system: Stack, message_id: int) -> None:
    """Take the delivery of message ``message_id`` off the mail queue, as if it had never been put there."""
    for raw in system.redis().lrange("mail", 0, -1):
        headers = json.loads(raw)["headers"]
        if (headers["task"], headers["argsrepr"]) == (TaskName.DELIVER_MESSAGE, f"({message_id},)"):
            assert system.redis().lrem("mail", 1, raw) == 1
            return
    raise AssertionError(f"no delivery of message {message_id} on the mail queue")


def test_mail_the_old_release_queued_on_the_emails_queue_is_delivered_once(
    system: Stack, client: httpx.Client, sessions: sessionmaker[Session]
) -> None:
    email = unique_email("old-route")
    app = create_celery_app("test", system.config.broker_url)
    with stopped(system, "emails-mail-worker"):  # the emails worker alone runs what waits on emails
        saga_id, user_id = _registration_published_the_old_way(system, sessions, email)  # its welcome step on emails
        wait_for_saga(client, system, saga_id, "completed")
        wait_until(lambda: system.mail_to(email), what="the welcome mail")

        sent = client.post(system.url("emails", "/v1/emails/send/"), json={"user_id": user_id, "subject": "Old route", "body": "b"})
        assert sent.status_code == 202, sent.text
        # The old release published the delivery on emails, not on mail.
        _unqueue_delivery(system, sent.json()["id"])
        app.send_task(str(TaskName.DELIVER_MESSAGE), args=(sent.json()["id"],), queue="emails")
        message = wait_until(
            lambda: (m := client.get(system.url("emails", sent.headers["Location"])).json())["status"] == "sent" and m,
            what="the mail queued on emails to be sent",
        )
    assert message["attempts"] == 1  # type: ignore[index]
    assert sorted(m["Content"]["Headers"]["Subject"][0] for m in system.mail_to(email)) == ["Old route", "Welcome aboard"]


def test_a_step_report_sent_by_the_release_before_is_recorded(system: Stack, sessions: sessionmaker[Session]) -> None:
    """One report per message, as the release before the carried reports sent it (seven arguments)."""
    with sessions.begin() as session:
        user = UserAccount(email=unique_email("old-report"), first_name="Old", last_name="Report", active=True, password_hash="$argon2id$x")
        session.add(user)
        session.flush()
        saga = engine.start_saga(session, user, SagaKind.REGISTRATION)
        session.query(OutboxMessage).filter_by(saga_id=saga.id).update({"published_at": engine.now()})  # never published
        saga_id = str(saga.id)
    started, finished = engine.now().isoformat(), engine.now().isoformat()
    report = (saga_id, RegistrationStep.CREATE_PROFILE.value, "done", None, 1, started, finished)
    create_celery_app("test", system.config.broker_url).send_task("users.record_step_event", args=report, queue="users")
    events = "SELECT type FROM saga_event WHERE saga_id = %s AND step = %s ORDER BY at"
    wait_until(lambda: len(system.query("users", events, saga_id, RegistrationStep.CREATE_PROFILE.value)) == 2, what="the old report")
    assert system.query("users", events, saga_id, RegistrationStep.CREATE_PROFILE.value) == [
        ("step_started",),
        ("step_done",),
    ]
