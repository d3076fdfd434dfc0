import socket
import uuid

import pytest
from fastapi.testclient import TestClient

from emails_svc import mailer
from emails_svc.tasks import deliver, forget_address, record_address, send_welcome_email
from tests.stack import Stack
from tests.utils.inbox import Inbox

PAYLOAD = {"user_id": 1, "email": "ann@example.com", "first_name": "Ann", "last_name": "Lee"}


def test_send_queues_a_message_on_the_mail_queue(emails: TestClient, clean: Stack) -> None:
    record_address.run(str(uuid.uuid4()), PAYLOAD)
    response = emails.post("/v1/emails/send/", json={"user_id": 1, "subject": "Hello", "body": "Hi there!"})
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert response.json()["to_address"] == "ann@example.com"
    # Its delivery waits on the mail queue, apart from the saga steps on the emails queue.
    assert (clean.redis().llen("mail"), clean.redis().llen("emails")) == (1, 0)
    assert emails.get(response.headers["Location"]).json()["id"] == response.json()["id"]


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": 1, "subject": "Hi\r\nBcc: victim@example.com", "body": "x"},
        {"user_id": 1, "subject": "", "body": "x"},
        {"user_id": 1, "subject": "s", "body": ""},
        {"user_id": 0, "subject": "s", "body": "x"},
        {"user_id": 1, "subject": "s", "body": "nul\u0000"},
    ],
)
def test_invalid_mail_is_refused_with_422(emails: TestClient, body: dict) -> None:
    assert emails.post("/v1/emails/send/", json=body).status_code == 422


def test_mail_to_unknown_users_and_unknown_messages_are_404(emails: TestClient) -> None:
    assert emails.post("/v1/emails/send", json={"user_id": 7, "subject": "s", "body": "b"}).json() == {"detail": "user not found"}
    assert emails.get("/v1/emails/12345").status_code == 404


def test_the_welcome_mail_delivered_twice_is_sent_once(smtp: Inbox, clean: Stack) -> None:
    saga_id = str(uuid.uuid4())
    record_address.run(saga_id, PAYLOAD)
    send_welcome_email.run(saga_id, 1)
    send_welcome_email.run(saga_id, 1)
    assert len(smtp.messages) == 1
    assert smtp.messages[0]["To"] == "Ann Lee <ann@example.com>"
    assert clean.query("emails", "SELECT status, attempts FROM message") == [("sent", 1)]


def test_no_welcome_mail_for_a_forgotten_address(smtp: Inbox) -> None:
    saga_id = str(uuid.uuid4())
    record_address.run(saga_id, PAYLOAD)
    forget_address.run(saga_id, 1)
    send_welcome_email.run(saga_id, 1)
    assert smtp.messages == []


def test_a_refused_connection_is_transient_and_recorded(emails: TestClient, clean: Stack) -> None:
    with socket.socket() as probe:  # nothing listens on the SMTP port without the smtp fixture
        assert probe.connect_ex(("127.0.0.1", clean.config.smtp_port)) != 0
    record_address.run(str(uuid.uuid4()), PAYLOAD)
    message_id = emails.post("/v1/emails/send/", json={"user_id": 1, "subject": "s", "body": "b"}).json()["id"]
    with pytest.raises(mailer.TransientDeliveryError):
        deliver(message_id)
    state = emails.get(f"/v1/emails/{message_id}").json()
    assert (state["status"], state["attempts"]) == ("queued", 1)
    assert "Connection refused" in state["last_error"]
