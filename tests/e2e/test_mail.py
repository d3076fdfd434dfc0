"""Mail end to end, through the gateway: awkward addresses, subjects and names; undeliverable mail; send limits.

The real workers deliver to the real SMTP sink (scripts/mailsink.py), which offers SMTPUTF8 and
refuses mailboxes named bounce-* with 550 5.1.1, as a server refuses a mailbox it does not know.
"""

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.stack import Stack, wait_until
from tests.utils.registration import saga_of, wait_for_saga


def _gw(system: Stack, path: str) -> str:
    return system.url("gateway", path)


def _register(client: httpx.Client, system: Stack, email: str, first_name: str = "Test", last_name: str = "User") -> httpx.Response:
    body = {"email": email, "first_name": first_name, "last_name": last_name, "password": "correct horse"}
    return client.post(_gw(system, "/v1/register/"), json=body)


def _welcome_step(client: httpx.Client, system: Stack, saga_id: str) -> dict:
    return next(step for step in saga_of(client, system, saga_id)["steps"] if step["step"] == "send_welcome_email")


def _outcome(client: httpx.Client, system: Stack, location: str) -> dict:
    """The message once it is no longer queued: sent, or failed."""
    return wait_until(lambda: (m := client.get(_gw(system, location)).json())["status"] != "queued" and m, what="the mail's outcome")  # type: ignore[return-value]


def _hex() -> str:
    return uuid.uuid4().hex[:10]


@pytest.mark.parametrize(
    ("local_part", "domain", "envelope_domain"),
    [("jörg-{}", "example.com", "example.com"), ("ann-{}", "bücher.example.com", "xn--bcher-kva.example.com")],
    ids=["non-ascii local part", "idn domain"],
)
def test_an_internationalised_address_gets_its_welcome_mail(
    system: Stack, client: httpx.Client, local_part: str, domain: str, envelope_domain: str
) -> None:
    local = local_part.format(_hex())
    accepted = _register(client, system, f"{local}@{domain}", first_name="Jörg", last_name="Müller")
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["email"] == f"{local}@{domain}"
    wait_for_saga(client, system, accepted.json()["saga"]["id"], "completed")

    [mail] = wait_until(lambda: system.mail_to(f"{local}@{envelope_domain}"), what="the welcome mail")  # type: ignore[misc]
    assert mail["Raw"]["To"] == [f"{local}@{envelope_domain}"]
    assert mail["Content"]["Headers"]["To"] == [f"Jörg Müller <{local}@{envelope_domain}>"]
    assert mail["Content"]["Headers"]["Subject"] == ["Welcome aboard"]
    assert "Jörg" in mail["Content"]["Body"]


def test_a_name_or_subject_of_more_than_one_line_is_refused_with_a_reason(system: Stack, client: httpx.Client) -> None:
    for name in ("Ann\nLee", "Ann\u2028Lee", "Ann\x85Lee"):
        refused = _register(client, system, f"ann-{_hex()}@example.com", first_name=name)
        assert refused.status_code == 422
        assert "must be one line of text" in refused.json()["detail"][0]["msg"]

    user = _register(client, system, f"ann-{_hex()}@example.com")
    assert user.status_code == 201, user.text
    for subject in ("Hi\r\nBcc: victim@example.com", "next\x85line", "line\u2028separator"):
        refused = client.post(_gw(system, "/v1/emails/send/"), json={"user_id": user.json()["id"], "subject": subject, "body": "b"})
        assert refused.status_code == 422
        assert "must be one line of text" in refused.json()["detail"][0]["msg"]

    subject = "Grüße\u00a0— ✓"  # a non-breaking space is fine: one line
    sent = client.post(_gw(system, "/v1/emails/send/"), json={"user_id": user.json()["id"], "subject": subject, "body": "b\u2028c"})
    assert sent.status_code == 202, sent.text
    state = _outcome(client, system, sent.headers["Location"])
    assert (state["status"], state["attempts"]) == ("sent", 1)
    assert any(m["Content"]["Headers"]["Subject"] == [subject] for m in system.mail_to(user.json()["email"]))


def test_mail_that_can_never_be_delivered_ends_failed_with_why_and_the_registration_stands(system: Stack, client: httpx.Client) -> None:
    email = f"bounce-{_hex()}@example.com"
    accepted = _register(client, system, email)
    assert accepted.status_code == 201, accepted.text  # the pivot does not wait for mail
    saga_id, user_id = accepted.json()["saga"]["id"], accepted.json()["id"]

    # The welcome step fails at once (no retries) with the server's reply; the saga stays completed.
    welcome = wait_until(lambda: (s := _welcome_step(client, system, saga_id))["status"] == "failed" and s, what="the welcome step")
    assert "550 5.1.1" in welcome["error"]  # type: ignore[index]
    assert welcome["attempts"] == 1  # type: ignore[index]
    saga = saga_of(client, system, saga_id)
    assert saga["status"] == "completed"
    assert client.get(_gw(system, f"/v1/users/{user_id}")).json()["registration_status"] == "completed"
    [(status, attempts, error)] = system.query("emails", "SELECT status, attempts, last_error FROM message WHERE user_id = %s", user_id)
    assert (status, attempts) == ("failed", 1)
    assert "550 5.1.1" in str(error)

    # A custom mail to the same mailbox: failed with the reason, not queued for ever.
    sent = client.post(_gw(system, "/v1/emails/send/"), json={"user_id": user_id, "subject": "s", "body": "b"})
    assert sent.status_code == 202, sent.text
    state = _outcome(client, system, sent.headers["Location"])
    assert (state["status"], state["attempts"]) == ("failed", 1)
    assert "550 5.1.1" in state["last_error"]
    assert system.mail_to(email) == []


def test_a_burst_of_sends_gets_429_with_retry_after_never_a_5xx(system: Stack, client: httpx.Client) -> None:
    user = _register(client, system, f"burst-{_hex()}@example.com")
    assert user.status_code == 201, user.text
    mail = {"user_id": user.json()["id"], "subject": "s", "body": "b"}

    def send(i: int) -> httpx.Response:
        # A caller naming its own address to the gateway is not believed: all count as one address.
        with httpx.Client(timeout=30) as own:
            return own.post(_gw(system, "/v1/emails/send/"), json=mail, headers={"X-Forwarded-For": f"10.0.{i // 250}.{i % 250}"})

    try:
        with ThreadPoolExecutor(max_workers=10) as pool:
            answers = list(pool.map(send, range(40)))
    finally:  # the limits are per minute; later tests send from this address too
        system.redis().delete(*system.redis().keys("throttle:*"))
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {202, 429}, statuses
    assert 1 <= statuses.count(202) <= 5  # EMAILS_SEND_RATE_PER_RECIPIENT's default, 5 a minute
    for answer in answers:
        if answer.status_code == 429:
            assert answer.json() == {"detail": "too many mails sent, try again later"}
            assert 1 <= int(answer.headers["Retry-After"]) <= 60


def test_the_per_address_limit_holds_whatever_address_the_caller_claims(system: Stack, client: httpx.Client) -> None:
    def send(i: int) -> httpx.Response:
        # Each to another (unknown) user, so only the per-address limit can stop them; each claims another address.
        with httpx.Client(timeout=30) as own:
            mail = {"user_id": 1_000_000 + i, "subject": "s", "body": "b"}
            return own.post(_gw(system, "/v1/emails/send/"), json=mail, headers={"X-Forwarded-For": f"10.1.{i // 250}.{i % 250}"})

    try:
        with ThreadPoolExecutor(max_workers=10) as pool:
            statuses = [answer.status_code for answer in pool.map(send, range(30))]
    finally:
        system.redis().delete(*system.redis().keys("throttle:*"))
    assert set(statuses) <= {404, 429}, statuses
    assert statuses.count(404) <= 20  # EMAILS_SEND_RATE_PER_ADDRESS's default, 20 a minute
    assert statuses.count(429) >= 10
