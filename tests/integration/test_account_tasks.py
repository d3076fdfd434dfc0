"""The account sagas' steps on the profile and emails services, against their real databases.

Each step is idempotent, each compensation undoes once, and a step delivered after its
compensation refuses to run.
"""

import uuid

import pytest
from fastapi.testclient import TestClient

from emails_svc import tasks as emails_tasks
from emails_svc.tasks import deliver
from profile_svc import tasks as profile_tasks
from saga import SagaAborted
from tests.stack import Stack
from tests.utils.inbox import Inbox

USER = {"user_id": 1, "email": "ann@example.com", "first_name": "Ann", "last_name": "Lee"}
DELETION = USER | {"restore_until": "2030-01-31T12:00:00+00:00"}
PURGE = {"user_id": 1}


def _saga() -> str:
    return str(uuid.uuid4())


def _profile_with_subscription(client: TestClient) -> None:
    """User 1's profile with account details and a subscription, as the contract's script leaves it."""
    profile_tasks.create_profile.run(_saga(), USER)
    assert client.post("/v1/profile/add/", json={"user_id": 1, "account_type": 7, "iban": "XX1111"}).status_code == 201
    assert client.post("/v1/subscription/add/", json={"user_id": 1}).status_code == 201


def _visible(client: TestClient) -> bool:
    found = client.get("/v1/profile/1")
    subscription = client.get("/v1/subscription/1")
    assert (found.status_code == 200) == (subscription.status_code == 200)
    return found.status_code == 200


def test_archiving_hides_the_profile_and_keeps_it_for_a_restore(profile: TestClient) -> None:
    _profile_with_subscription(profile)
    deletion = _saga()
    profile_tasks.archive_profile.run(deletion, DELETION)
    profile_tasks.archive_profile.run(deletion, DELETION)  # delivered twice
    assert not _visible(profile)
    assert profile.get("/v1/profile/1").json() == {"detail": "user not found"}
    assert profile.post("/v1/profile/add/", json={"user_id": 1, "account_type": 0, "iban": "XX11"}).status_code == 404
    assert profile.post("/v1/subscription/add/", json={"user_id": 1}).status_code == 404

    restore = _saga()
    profile_tasks.restore_profile.run(restore, USER)
    profile_tasks.restore_profile.run(restore, USER)
    assert _visible(profile)
    restored = profile.get("/v1/profile/1").json()
    assert (restored["account_type"], restored["iban"], restored["subscribed"]) == (7, "XX1111", True)


def test_an_archive_is_undone_once_and_a_late_step_refused(profile: TestClient) -> None:
    _profile_with_subscription(profile)
    first = _saga()
    profile_tasks.archive_profile.run(first, DELETION)
    profile_tasks.undo_archive_profile.run(first, DELETION)
    assert _visible(profile)
    with pytest.raises(SagaAborted):
        profile_tasks.archive_profile.run(first, DELETION)  # arrived after its compensation
    assert _visible(profile)

    # A later deletion archives again; the first one's compensation, delivered again, changes nothing.
    profile_tasks.archive_profile.run(_saga(), DELETION)
    profile_tasks.undo_archive_profile.run(first, DELETION)
    assert not _visible(profile)


def test_a_restore_is_undone_once(profile: TestClient) -> None:
    _profile_with_subscription(profile)
    profile_tasks.archive_profile.run(_saga(), DELETION)
    restore = _saga()
    profile_tasks.restore_profile.run(restore, USER)
    profile_tasks.undo_restore_profile.run(restore, USER)
    profile_tasks.undo_restore_profile.run(restore, USER)
    assert not _visible(profile)
    profile_tasks.undo_restore_profile.run(_saga(), USER)  # a restore that never ran: nothing to undo
    assert not _visible(profile)


def test_purging_removes_only_an_archived_profile(profile: TestClient, clean: Stack) -> None:
    _profile_with_subscription(profile)
    profile_tasks.purge_profile.run(_saga(), PURGE)
    assert _visible(profile)  # never deleted while the account is live
    profile_tasks.archive_profile.run(_saga(), DELETION)
    profile_tasks.purge_profile.run(_saga(), PURGE)
    profile_tasks.purge_profile.run(_saga(), PURGE)
    assert clean.query("profile", "SELECT count(*) FROM profile") == [(0,)]
    assert clean.query("profile", "SELECT count(*) FROM subscription") == [(0,)]


def test_the_goodbye_mail_is_queued_once_per_saga_and_delivered(emails: TestClient, clean: Stack, smtp: Inbox) -> None:
    emails_tasks.record_address.run(_saga(), USER)
    deletion = _saga()
    emails_tasks.send_goodbye_email.run(deletion, DELETION)
    emails_tasks.send_goodbye_email.run(deletion, DELETION)
    [(message_id, kind, published)] = clean.query("emails", "SELECT id, kind, published_at IS NOT NULL FROM message")
    assert (kind, published) == ("goodbye", True)
    assert clean.redis().llen("mail") == 1  # its delivery, published through the outbox

    deliver(message_id)  # what the deliver_message task does
    [mail] = smtp.messages
    assert (mail["To"], mail["Subject"]) == ("Ann Lee <ann@example.com>", "Your account is being deleted")
    text = mail.get_payload()[0].get_payload(decode=True).decode()
    assert "31 January 2030, 12:00 UTC" in text
    assert "restore" in text


def test_the_address_is_forgotten_and_remembered_again(emails: TestClient) -> None:
    def knows_the_address() -> bool:
        response = emails.post("/v1/emails/send/", json={"user_id": 1, "subject": "s", "body": "b"})
        return response.status_code == 202

    emails_tasks.record_address.run(_saga(), USER)
    deletion = _saga()
    emails_tasks.erase_address.run(deletion, DELETION)
    emails_tasks.erase_address.run(deletion, DELETION)
    assert not knows_the_address()
    emails_tasks.undo_erase_address.run(deletion, DELETION)
    assert knows_the_address()
    with pytest.raises(SagaAborted):
        emails_tasks.erase_address.run(deletion, DELETION)

    emails_tasks.erase_address.run(_saga(), DELETION)  # a later deletion
    emails_tasks.undo_erase_address.run(deletion, DELETION)  # the earlier compensation again: nothing
    assert not knows_the_address()

    restore = _saga()
    emails_tasks.recall_address.run(restore, USER | {"first_name": "Anna"})
    emails_tasks.recall_address.run(restore, USER)
    assert knows_the_address()
    emails_tasks.undo_recall_address.run(restore, USER)
    assert not knows_the_address()


def test_purging_forgets_the_address_and_every_message(emails: TestClient, clean: Stack) -> None:
    emails_tasks.record_address.run(_saga(), USER)
    emails.post("/v1/emails/send/", json={"user_id": 1, "subject": "s", "body": "b"})
    emails_tasks.send_goodbye_email.run(_saga(), DELETION)
    emails_tasks.purge_address.run(_saga(), PURGE)
    assert clean.query("emails", "SELECT count(*) FROM recipient") == [(0,)]
    assert clean.query("emails", "SELECT count(*) FROM message") == [(0,)]
