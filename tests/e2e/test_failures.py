"""The saga under failure: compensations, retries, outages, killed workers, double delivery."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from saga import RegistrationStep, TaskName, create_celery_app
from tests.stack import Stack, wait_until
from tests.utils.registration import register, saga_of, unique_email, wait_for_saga

ALL_STEPS = [step.value for step in RegistrationStep]


def _step_statuses(saga: dict) -> dict[str, str]:
    return {step["step"]: step["status"] for step in saga["steps"]}


def _ledger(system: Stack, service: str, saga_id: str) -> dict[str, str]:
    return dict(system.query(service, "SELECT step, state FROM saga_step_log WHERE saga_id = %s", saga_id))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("failed_step", "expected_steps", "profile_ledger", "emails_ledger"),
    [
        (
            RegistrationStep.CREATE_PROFILE,
            ["failed", "skipped", "skipped", "skipped"],
            {},
            {},
        ),
        (
            RegistrationStep.RECORD_ADDRESS,
            ["compensated", "failed", "skipped", "skipped"],
            {"create_profile": "compensated"},
            {},
        ),
        (
            RegistrationStep.COMPLETE_REGISTRATION,
            ["compensated", "compensated", "failed", "skipped"],
            {"create_profile": "compensated"},
            {"record_address": "compensated"},
        ),
    ],
)
def test_a_failing_step_runs_exactly_the_compensations_for_what_was_done(
    system: Stack,
    client: httpx.Client,
    failed_step: RegistrationStep,
    expected_steps: list[str],
    profile_ledger: dict[str, str],
    emails_ledger: dict[str, str],
) -> None:
    email = unique_email(f"fail-{failed_step}")
    accepted = register(client, system, email)
    assert accepted.status_code == 202, accepted.text
    saga_id = accepted.json()["saga"]["id"]
    user_id = accepted.json()["id"]

    wait_for_saga(client, system, saga_id, "failed")
    saga = wait_until(lambda: (s := saga_of(client, system, saga_id))["error"] and s, what="the failed step's error")
    assert _step_statuses(saga) == dict(zip(ALL_STEPS, expected_steps, strict=True))
    assert saga["failed_step"] == failed_step
    assert saga["error"].startswith("InjectedFault")
    assert client.get(system.url("users", f"/v1/users/{user_id}")).json()["registration_status"] == "failed"

    # Only the compensations for steps that ran were carried out, by the services that own the data.
    assert _ledger(system, "profile", saga_id) == profile_ledger
    assert _ledger(system, "emails", saga_id) == emails_ledger
    assert client.get(system.url("profile", f"/v1/profile/{user_id}")).status_code == 404
    mail = client.post(system.url("emails", "/v1/emails/send/"), json={"user_id": user_id, "subject": "s", "body": "b"})
    assert mail.status_code == 404
    assert system.mail_to(email) == []

    # The failed registration freed the email: a new attempt is accepted, not refused as a duplicate.
    again = register(client, system, email.upper())
    assert again.status_code in (201, 202), again.text


def test_welcome_mail_is_retried_until_smtp_is_back_and_the_registration_completes_meanwhile(system: Stack, client: httpx.Client) -> None:
    system.stop("mail")
    try:
        email = unique_email()
        accepted = register(client, system, email)
        assert accepted.status_code == 201, accepted.text  # the pivot does not wait for mail
        assert accepted.json()["registration_status"] == "completed"
        saga_id = accepted.json()["saga"]["id"]

        def retried() -> bool:
            welcome = next(s for s in saga_of(client, system, saga_id)["steps"] if s["step"] == "send_welcome_email")
            return welcome["status"] == "retrying" and welcome["attempts"] >= 2 and "Connection refused" in welcome["error"]

        wait_until(retried, what="the welcome mail to be retried")
    finally:
        system.start("mail")
    saga = wait_for_saga(client, system, saga_id, "completed")
    assert saga["status"] == "completed"
    wait_until(lambda: system.mail_to(email), what="the welcome mail to arrive")
    assert len(system.mail_to(email)) == 1


def test_a_registration_accepted_while_redis_is_down_completes_when_it_is_back(system: Stack, client: httpx.Client) -> None:
    system.stop_redis()
    try:
        assert client.get(system.url("users", "/readyz")).status_code == 503
        email = unique_email()
        accepted = register(client, system, email)
        assert accepted.status_code == 202, accepted.text
        saga_id = accepted.json()["saga"]["id"]
        unpublished = system.query("users", "SELECT count(*) FROM outbox_message WHERE saga_id = %s AND published_at IS NULL", saga_id)
        assert unpublished == [(1,)]
    finally:
        system.start_redis()
    wait_for_saga(client, system, saga_id, "completed")
    wait_until(lambda: system.mail_to(email), what="the welcome mail to arrive")
    assert client.get(system.url("users", "/readyz")).status_code == 200


def test_redis_going_down_while_a_step_runs_does_not_compensate_the_step(system: Stack, client: httpx.Client) -> None:
    # The worker publishes the next step after its task succeeded, with Redis down; it keeps
    # trying (saga/_app.py), and whatever is lost the watchdog re-drives.
    email = unique_email(f"slow-{RegistrationStep.RECORD_ADDRESS}")  # the step is still running after the API's wait
    accepted = register(client, system, email)
    assert accepted.status_code == 202, accepted.text
    saga_id = accepted.json()["saga"]["id"]
    system.stop_redis()
    try:
        # The step finishes while Redis is down and its worker keeps trying to publish the next one.
        wait_until(
            lambda: system.query("emails", "SELECT state FROM saga_step_log WHERE saga_id = %s", saga_id) == [("done",)],
            what="the step to finish while Redis is down",
        )
    finally:
        system.start_redis()
    saga = wait_for_saga(client, system, saga_id, "completed", "failed")
    assert saga["status"] == "completed"
    assert _ledger(system, "profile", saga_id) == {"create_profile": "done"}
    wait_until(lambda: system.mail_to(email), what="the welcome mail to arrive")


def test_a_saga_whose_worker_was_killed_mid_step_completes_once_it_is_back(system: Stack, client: httpx.Client) -> None:
    email = unique_email(f"slow-{RegistrationStep.CREATE_PROFILE}")  # the step stalls long enough to kill its worker
    accepted = register(client, system, email)
    assert accepted.status_code == 202, accepted.text
    saga_id = accepted.json()["saga"]["id"]
    system.kill("profile-worker")
    system.start("profile-worker")
    saga = wait_for_saga(client, system, saga_id, "completed")
    assert saga["redrive_count"] >= 1  # the watchdog, not the broker's visibility timeout, finished it
    user_id = accepted.json()["id"]
    assert client.get(system.url("profile", f"/v1/profile/{user_id}")).status_code == 200
    wait_until(lambda: system.mail_to(email), what="the welcome mail to arrive")
    assert len(system.mail_to(email)) == 1


def test_every_step_delivered_twice_has_one_effect(system: Stack, client: httpx.Client) -> None:
    email = unique_email()
    accepted = register(client, system, email)
    assert accepted.status_code == 201, accepted.text
    saga_id, user_id = accepted.json()["saga"]["id"], accepted.json()["id"]
    wait_for_saga(client, system, saga_id, "completed")
    before = saga_of(client, system, saga_id)
    # 15 events: started; each of the 4 steps queued, started, done; pivot passed; completed.
    history = wait_until(lambda: len(events := _history(system, saga_id)) == 15 and events, what="every step's report")
    leftovers = set(system.redis().hkeys("unacked"))

    # Deliver every step again, as the broker may, then the whole chain again, as the watchdog may.
    payload = {"user_id": user_id, "email": email, "first_name": "Test", "last_name": "User"}
    app = create_celery_app("test", system.config.broker_url)
    results = [
        app.send_task(TaskName.CREATE_PROFILE, args=(saga_id, payload), queue="profile"),
        app.send_task(TaskName.RECORD_ADDRESS, args=(saga_id, payload), queue="emails"),
        app.send_task(TaskName.COMPLETE_REGISTRATION, args=(saga_id,), queue="users"),
        app.send_task(TaskName.SEND_WELCOME_EMAIL, args=(saga_id, user_id), queue="emails"),
    ]
    system.query("users", "INSERT INTO outbox_message (saga_id, kind) VALUES (%s, 'start')", saga_id)
    wait_until(
        lambda: system.query("users", "SELECT count(*) FROM outbox_message WHERE published_at IS NULL") == [(0,)],
        what="the relay to publish the chain again",
    )
    _wait_for_queues_to_drain(system, leftovers)
    assert all(result.id for result in results)

    assert system.query("profile", "SELECT count(*) FROM profile WHERE user_id = %s", user_id) == [(1,)]
    assert system.query("emails", "SELECT count(*) FROM recipient WHERE user_id = %s", user_id) == [(1,)]
    assert system.query("emails", "SELECT count(*) FROM message WHERE saga_id = %s", saga_id) == [(1,)]
    assert len(system.mail_to(email)) == 1
    after = saga_of(client, system, saga_id)
    assert after["status"] == "completed"
    assert _step_statuses(after) == _step_statuses(before)
    assert _history(system, saga_id) == history  # every run reported again: nothing written twice


def test_compensations_delivered_twice_and_a_late_step_change_nothing(system: Stack, client: httpx.Client) -> None:
    email = unique_email(f"fail-{RegistrationStep.COMPLETE_REGISTRATION}")
    accepted = register(client, system, email)
    saga_id, user_id = accepted.json()["saga"]["id"], accepted.json()["id"]
    wait_for_saga(client, system, saga_id, "failed")
    before = wait_until(lambda: (s := saga_of(client, system, saga_id))["error"] and s, what="the failed step's error")
    leftovers = set(system.redis().hkeys("unacked"))

    payload = {"user_id": user_id, "email": email, "first_name": "Test", "last_name": "User"}
    app = create_celery_app("test", system.config.broker_url)
    app.send_task(TaskName.REMOVE_PROFILE, args=(saga_id, user_id), queue="profile")
    app.send_task(TaskName.FORGET_ADDRESS, args=(saga_id, user_id), queue="emails")
    app.send_task(TaskName.FAIL_REGISTRATION, args=(saga_id,), queue="users")
    # A forward step arriving after its compensation must not bring the profile back.
    app.send_task(TaskName.CREATE_PROFILE, args=(saga_id, payload), queue="profile")
    app.send_task(TaskName.RECORD_ADDRESS, args=(saga_id, payload), queue="emails")
    _wait_for_queues_to_drain(system, leftovers)

    assert system.query("profile", "SELECT count(*) FROM profile WHERE user_id = %s", user_id) == [(0,)]
    assert system.query("emails", "SELECT count(*) FROM recipient WHERE user_id = %s", user_id) == [(0,)]
    after = saga_of(client, system, saga_id)
    assert after["status"] == "failed"
    assert _step_statuses(after)["create_profile"] == "compensated"
    assert after["error"] == before["error"]


def test_concurrent_registrations_of_one_email_make_exactly_one_user(system: Stack) -> None:
    email = unique_email("race")
    variants = [email, email.upper(), email.title()] * 3

    def attempt(address: str) -> int:
        with httpx.Client(timeout=60) as client:
            return register(client, system, address).status_code

    with ThreadPoolExecutor(max_workers=len(variants)) as pool:
        codes = list(pool.map(attempt, variants))
    assert sorted(codes) == [201] + [409] * (len(variants) - 1)
    assert system.query("users", "SELECT count(*) FROM user_account WHERE lower(email) = %s", email) == [(1,)]


def _history(system: Stack, saga_id: str) -> list[tuple[object, ...]]:
    return system.query("users", "SELECT id, type, step, attempt FROM saga_event WHERE saga_id = %s ORDER BY id", saga_id)


def _wait_for_queues_to_drain(system: Stack, leftovers: set[bytes]) -> None:
    """Every queue empty and nothing unacknowledged but the leftovers of earlier tests.

    (A worker killed in another test leaves its message unacknowledged until the broker's
    visibility timeout; those are taken before the test and ignored.)
    """
    client = system.redis()

    def drained() -> bool:
        in_flight = set(client.hkeys("unacked")) - leftovers
        return all(client.llen(queue) == 0 for queue in ("users", "profile", "emails")) and not in_flight

    # Drained on three polls in a row: a finishing step may still publish its follow-up.
    polls: list[bool] = []
    wait_until(lambda: polls.append(drained()) or polls[-3:] == [True] * 3, interval=0.5, what="the queues to drain")
