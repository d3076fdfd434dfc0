"""Awkward addresses, subjects and names: delivered to a real SMTP server, or refused with a 422.

And what cannot be delivered ends ``failed`` with the reason at once, never ``queued`` for ever.
"""

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from emails_svc import mailer
from emails_svc.tasks import deliver, record_address, send_welcome_email
from tests.stack import Stack
from tests.utils.accounts import PASSWORD, bearer, login, registered
from tests.utils.clients import emails_client
from tests.utils.inbox import Inbox

NON_ASCII_LOCAL = "jörg.müller@example.com"
IDN_DOMAIN = "ann@bücher.example.com"


def _user(email: str, first_name: str = "Ann", last_name: str = "Lee") -> dict:
    return {"user_id": 1, "email": email, "first_name": first_name, "last_name": last_name}


def _message(stack: Stack, message_id: int = 1) -> tuple:
    [row] = stack.query("emails", "SELECT status, attempts, last_error FROM message WHERE id = %s", message_id)
    return row


# --- what the APIs accept -------------------------------------------------------------------


@pytest.mark.parametrize("email", [NON_ASCII_LOCAL, IDN_DOMAIN, "ann@xn--bcher-kva.example.com"])
def test_registration_accepts_internationalised_addresses_in_one_form(users: TestClient, clean: Stack, email: str) -> None:
    response = users.post("/v1/register/", json={"email": email, "first_name": "Ann", "last_name": "Lee", "password": PASSWORD})
    assert response.status_code == 202, response.text
    assert response.json()["email"] == email.replace("xn--bcher-kva", "bücher")  # one spelling per mailbox


@pytest.mark.parametrize("field", ["first_name", "last_name"])
@pytest.mark.parametrize("name", ["Ann\nLee", "Ann\r\nBcc: x@example.com", "Ann\x85Lee", "Ann\u2028Lee", "Ann\x1bLee"])
def test_registration_refuses_a_name_of_more_than_one_line(users: TestClient, field: str, name: str) -> None:
    body = {"email": "ann@example.com", "first_name": "Ann", "last_name": "Lee", "password": PASSWORD} | {field: name}
    response = users.post("/v1/register/", json=body)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", field]
    assert "must be one line of text" in error["msg"]


def test_changing_a_name_to_more_than_one_line_is_refused(users: TestClient, clean: Stack) -> None:
    registered(users, clean)
    token = login(users)["access_token"]
    response = users.patch("/v1/users/me", json={"first_name": "Ann\u2028Lee"}, headers=bearer(token))
    assert response.status_code == 422
    assert "(found U+2028)" in response.json()["detail"][0]["msg"]
    assert users.patch("/v1/users/me", json={"first_name": "Ännchen"}, headers=bearer(token)).json()["first_name"] == "Ännchen"


@pytest.mark.parametrize("subject", ["Hi\r\nBcc: x@example.com", "next\x85line", "line\u2028separator", "para\u2029graph", "tab\there"])
def test_a_subject_of_more_than_one_line_is_refused_with_a_reason(emails: TestClient, subject: str) -> None:
    record_address.run(str(uuid.uuid4()), _user("ann@example.com"))
    response = emails.post("/v1/emails/send/", json={"user_id": 1, "subject": subject, "body": "x"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "subject"]
    assert "must be one line of text" in error["msg"]


# --- delivery -------------------------------------------------------------------------------


def test_a_non_ascii_local_part_is_delivered_with_smtputf8(smtp: Inbox, clean: Stack) -> None:
    saga_id = str(uuid.uuid4())
    record_address.run(saga_id, _user(NON_ASCII_LOCAL, "Jörg", "Müller"))
    send_welcome_email.run(saga_id, 1)
    [(_, recipients)] = smtp.envelopes
    assert recipients == [NON_ASCII_LOCAL]
    [mail] = smtp.parsed
    assert mail["To"] == "Jörg Müller <jörg.müller@example.com>"
    assert mail["Subject"] == mailer.WELCOME_SUBJECT
    assert _message(clean) == ("sent", 1, None)


def test_an_idn_domain_is_delivered_in_its_ascii_form_to_any_server(smtp_without_smtputf8: Inbox, clean: Stack) -> None:
    smtp = smtp_without_smtputf8
    saga_id = str(uuid.uuid4())
    record_address.run(saga_id, _user(IDN_DOMAIN))
    send_welcome_email.run(saga_id, 1)
    [(_, recipients)] = smtp.envelopes  # no SMTPUTF8 needed
    assert recipients == ["ann@xn--bcher-kva.example.com"]
    assert smtp.parsed[0]["To"] == "Ann Lee <ann@xn--bcher-kva.example.com>"
    assert _message(clean) == ("sent", 1, None)


def test_a_subject_with_non_ascii_text_arrives_intact(emails: TestClient, smtp: Inbox, clean: Stack) -> None:
    record_address.run(str(uuid.uuid4()), _user(NON_ASCII_LOCAL, "Jörg", "Müller"))
    subject = "Grüße — ünïcödé ✓ " + "long " * 30
    body = "Hällo\r\nline two\u2028three"
    message_id = emails.post("/v1/emails/send/", json={"user_id": 1, "subject": subject, "body": body}).json()["id"]
    deliver(message_id)
    [mail] = smtp.parsed
    assert mail["Subject"] == subject
    assert "Hällo" in mail.get_content()
    assert _message(clean, message_id) == ("sent", 1, None)


def test_a_non_ascii_local_part_to_a_server_without_smtputf8_fails_at_once_with_why(
    emails: TestClient, smtp_without_smtputf8: Inbox, clean: Stack
) -> None:
    record_address.run(str(uuid.uuid4()), _user(NON_ASCII_LOCAL))
    message_id = emails.post("/v1/emails/send/", json={"user_id": 1, "subject": "s", "body": "b"}).json()["id"]
    with pytest.raises(mailer.PermanentDeliveryError):
        deliver(message_id)
    status, attempts, error = _message(clean, message_id)
    assert (status, attempts) == ("failed", 1)
    assert "SMTPUTF8" in error
    assert emails.get(f"/v1/emails/{message_id}").json()["status"] == "failed"
    with pytest.raises(mailer.PermanentDeliveryError, match="failed before: the SMTP server cannot take"):
        deliver(message_id)  # delivered again (at least once): nothing more is tried
    assert _message(clean, message_id)[:2] == ("failed", 1)
    assert smtp_without_smtputf8.messages == []


def test_a_welcome_mail_that_cannot_be_delivered_fails_its_step_with_why(smtp_without_smtputf8: Inbox, clean: Stack) -> None:
    saga_id = str(uuid.uuid4())
    record_address.run(saga_id, _user(NON_ASCII_LOCAL))
    with pytest.raises(mailer.PermanentDeliveryError, match="SMTPUTF8"):  # not retried: the step fails
        send_welcome_email.run(saga_id, 1)
    assert _message(clean)[:2] == ("failed", 1)
    with pytest.raises(mailer.PermanentDeliveryError, match="SMTPUTF8"):  # re-driven: fails again, not "done"
        send_welcome_email.run(saga_id, 1)
    assert _message(clean)[:2] == ("failed", 1)


@pytest.mark.parametrize(
    ("reply", "status", "retried"),
    [("550 5.1.1 no such mailbox", "failed", False), ("553 5.1.3 bad address", "failed", False), ("450 4.2.1 try later", "queued", True)],
)
def test_a_refused_recipient_is_permanent_or_transient_by_its_code(
    emails: TestClient, smtp: Inbox, clean: Stack, reply: str, status: str, retried: bool
) -> None:
    record_address.run(str(uuid.uuid4()), _user("ann@example.com"))
    smtp.refusals["ann@example.com"] = reply
    message_id = emails.post("/v1/emails/send/", json={"user_id": 1, "subject": "s", "body": "b"}).json()["id"]
    with pytest.raises(mailer.TransientDeliveryError if retried else mailer.PermanentDeliveryError):
        deliver(message_id)
    assert _message(clean, message_id) == (status, 1, f"SMTP {'deferred' if retried else 'refused'} the recipient: {reply}")


def test_a_stored_message_that_cannot_be_composed_fails_at_once_with_why(emails: TestClient, smtp: Inbox, clean: Stack) -> None:
    """Rows written before the API refused such subjects: recorded failed, not left queued with 0 attempts."""
    record_address.run(str(uuid.uuid4()), _user("ann@example.com", "Ann\nLee"))  # the name is made one line
    message_id = emails.post("/v1/emails/send/", json={"user_id": 1, "subject": "s", "body": "b"}).json()["id"]
    clean.query("emails", "UPDATE message SET subject = %s WHERE id = %s", "next\u2028line", message_id)
    with pytest.raises(mailer.UndeliverableMessage):
        deliver(message_id)
    status, attempts, error = _message(clean, message_id)
    assert (status, attempts) == ("failed", 1)
    assert error.startswith("cannot compose the message")
    assert smtp.messages == []


def test_a_stored_name_with_a_line_break_is_delivered_on_one_line(smtp: Inbox, clean: Stack) -> None:
    saga_id = str(uuid.uuid4())
    record_address.run(saga_id, _user("ann@example.com", "Ann"))
    clean.query("emails", "UPDATE recipient SET last_name = %s", "Lee\nBcc: victim@example.com")  # from before the 422
    send_welcome_email.run(saga_id, 1)
    [(_, recipients)] = smtp.envelopes
    assert recipients == ["ann@example.com"]
    assert smtp.parsed[0]["To"] == '"Ann Lee Bcc: victim@example.com" <ann@example.com>'


def test_a_saga_bringing_an_address_no_mail_can_be_written_to_fails_its_step(clean: Stack) -> None:
    with pytest.raises(ValidationError, match="not a deliverable address"):  # not retried: the saga is compensated
        record_address.run(str(uuid.uuid4()), _user("ann@@example.com"))
    assert clean.query("emails", "SELECT count(*) FROM recipient") == [(0,)]


# --- throttling -----------------------------------------------------------------------------


@pytest.fixture
def throttled_emails() -> Iterator[TestClient]:
    with emails_client(send_rate_per_address="5/hour", send_rate_per_recipient="3/hour") as client:
        yield client


def test_sending_is_limited_per_recipient_and_per_address(throttled_emails: TestClient, clean: Stack) -> None:
    for user_id in (1, 2):
        record_address.run(str(uuid.uuid4()), _user(f"user{user_id}@example.com") | {"user_id": user_id})

    def send(user_id: int) -> int:
        return throttled_emails.post("/v1/emails/send/", json={"user_id": user_id, "subject": "s", "body": "b"}).status_code

    assert [send(1) for _ in range(3)] == [202, 202, 202]
    refused = throttled_emails.post("/v1/emails/send/", json={"user_id": 1, "subject": "s", "body": "b"})
    assert refused.status_code == 429
    assert refused.json() == {"detail": "too many mails sent, try again later"}
    assert 3000 < int(refused.headers["Retry-After"]) <= 3600
    assert [send(2), send(2)] == [202, 429]  # user 2 still gets mail, until the address has sent 5 (the 4th counted)
    assert clean.query("emails", "SELECT count(*) FROM message") == [(4,)]


def test_a_request_refused_for_its_input_is_not_counted(throttled_emails: TestClient, clean: Stack) -> None:
    record_address.run(str(uuid.uuid4()), _user("ann@example.com"))
    for _ in range(5):
        assert throttled_emails.post("/v1/emails/send/", json={"user_id": 1, "subject": "a\nb", "body": "b"}).status_code == 422
    assert throttled_emails.post("/v1/emails/send/", json={"user_id": 1, "subject": "s", "body": "b"}).status_code == 202


def test_sending_with_the_throttle_store_down_is_a_503_not_a_500(emails: TestClient, clean: Stack) -> None:
    record_address.run(str(uuid.uuid4()), _user("ann@example.com"))
    clean.stop_redis()
    try:
        response = emails.post("/v1/emails/send/", json={"user_id": 1, "subject": "s", "body": "b"})
    finally:
        clean.start_redis()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
