"""Deletion, restore and purge as the users service sees them: its API, its saga log and their rules.

No workers run here: the steps on other services are tested in test_account_tasks.py, and the
whole sagas end to end. Here the users service's own parts of the sagas are called directly.
"""

import json
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from saga import DeletionStep, RestoreStep, SagaKind, make_sessionmaker
from tests.stack import Stack
from tests.utils.accounts import PASSWORD, bearer, login, registered
from tests.utils.clients import users_client
from users_svc import engine, watchdog
from users_svc.config import get_settings
from users_svc.models import UserAccount


@pytest.fixture
def users(clean: Stack) -> Iterator[TestClient]:
    with users_client() as client:
        yield client


@pytest.fixture
def sessions(clean: Stack) -> Iterator[sessionmaker[Session]]:
    make_session = make_sessionmaker(get_settings().database_url)
    yield make_session
    make_session.kw["bind"].dispose()


def _account(stack: Stack, user_id: int) -> tuple[str, bool, bool]:
    [(status, deleted, purge_after)] = stack.query(
        "users", "SELECT account_status, deleted_at IS NOT NULL, purge_after IS NOT NULL FROM user_account WHERE id = %s", user_id
    )
    return str(status), bool(deleted), bool(purge_after)


def _delete(users: TestClient, stack: Stack) -> tuple[int, uuid.UUID]:
    user_id = registered(users, stack)
    response = users.delete("/v1/users/me", headers=bearer(login(users)["access_token"]))
    assert response.status_code == 202, response.text
    return user_id, uuid.UUID(response.json()["id"])


def _steps(users: TestClient, saga_id: uuid.UUID) -> dict[str, str]:
    return {step["step"]: step["status"] for step in users.get(f"/v1/sagas/{saga_id}").json()["steps"]}


def test_delete_deactivates_the_account_and_starts_the_saga_with_the_goodbye_mail(users: TestClient, clean: Stack) -> None:
    user_id = registered(users, clean)
    tokens = login(users)
    response = users.delete("/v1/users/me", headers=bearer(tokens["access_token"]))
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "running"
    assert response.headers["Location"] == body["url"] == f"/v1/sagas/{body['id']}"

    # The first step sits on the emails queue: the goodbye mail goes out before anything is removed.
    [message] = clean.redis().lrange("emails", 0, -1)
    assert json.loads(message)["headers"]["task"] == "emails.send_goodbye_email"
    saga = users.get(body["url"]).json()
    assert (saga["kind"], saga["user_id"], saga["status"]) == ("deletion", user_id, "running")
    assert [(s["step"], s["status"]) for s in saga["steps"]] == [(step.value, "pending") for step in DeletionStep]

    # Deactivated at once: every token stops working, the account is not shown, no login.
    assert _account(clean, user_id) == ("deleting", True, True)
    assert users.get("/v1/users/me", headers=bearer(tokens["access_token"])).status_code == 401
    assert users.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401
    assert users.get(f"/v1/users/{user_id}").status_code == 404
    denied = users.post("/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD})
    assert (denied.status_code, denied.json()) == (403, {"detail": "account deletion in progress"})
    # The registration saga stays where it was.
    assert users.get(f"/v1/register/{saga['id']}").status_code == 404


def test_a_completed_deletion_can_be_restored_within_the_period(users: TestClient, clean: Stack, sessions: sessionmaker[Session]) -> None:
    user_id, deletion = _delete(users, clean)
    with sessions.begin() as session:
        engine.pass_pivot(session, deletion, SagaKind.DELETION)
    assert _account(clean, user_id) == ("deleted", True, True)
    assert users.get(f"/v1/sagas/{deletion}").json()["status"] == "completed"
    assert set(_steps(users, deletion).values()) == {"done"}
    denied = users.post("/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD})
    assert denied.json() == {"detail": "account deleted; it can be restored with POST /v1/users/restore"}

    wrong = users.post("/v1/users/restore", json={"email": "ann@example.com", "password": "wrong"})
    assert (wrong.status_code, wrong.json()) == (401, {"detail": "invalid email or password"})
    accepted = users.post("/v1/users/restore", json={"email": "Ann@Example.com", "password": PASSWORD})
    assert accepted.status_code == 202, accepted.text
    assert (accepted.json()["id"], accepted.json()["account_status"]) == (user_id, "restoring")
    restore = uuid.UUID(accepted.json()["saga"]["id"])
    assert accepted.headers["Location"] == f"/v1/sagas/{restore}"
    assert "profile.restore_profile" in [json.loads(m)["headers"]["task"] for m in clean.redis().lrange("profile", 0, -1)]
    again = users.post("/v1/users/restore", json={"email": "ann@example.com", "password": PASSWORD})
    assert (again.status_code, again.json()) == (409, {"detail": "account restore in progress"})

    with sessions.begin() as session:
        engine.pass_pivot(session, restore, SagaKind.RESTORE)
    assert _account(clean, user_id) == ("active", False, False)
    login(users)
    assert users.get(f"/v1/users/{user_id}").status_code == 200


def test_a_failed_deletion_leaves_the_account_as_it_was(users: TestClient, clean: Stack, sessions: sessionmaker[Session]) -> None:
    user_id, deletion = _delete(users, clean)
    with sessions.begin() as session:
        engine.begin_compensation(session, deletion, DeletionStep.ERASE_ADDRESS)
    with pytest.raises(engine.SagaNotRunning), sessions.begin() as session:
        engine.pass_pivot(session, deletion, SagaKind.DELETION)
    for _ in range(2):  # the last compensation, delivered twice
        with sessions.begin() as session:
            engine.fail_saga(session, deletion)
    assert _account(clean, user_id) == ("active", False, False)
    saga = users.get(f"/v1/sagas/{deletion}").json()
    assert (saga["status"], saga["failed_step"]) == ("failed", "erase_address")
    # The goodbye mail went out and is not undone; the archived profile is restored.
    assert _steps(users, deletion) == {
        "send_goodbye_email": "done",
        "archive_profile": "compensated",
        "erase_address": "failed",
        "complete_deletion": "skipped",
    }
    login(users)


def test_a_deletion_past_its_pivot_is_not_compensated(users: TestClient, clean: Stack, sessions: sessionmaker[Session]) -> None:
    user_id, deletion = _delete(users, clean)
    with sessions.begin() as session:
        engine.pass_pivot(session, deletion, SagaKind.DELETION)
    with pytest.raises(engine.SagaPastPivot), sessions.begin() as session:
        engine.begin_compensation(session, deletion, DeletionStep.COMPLETE_DELETION)
    with pytest.raises(engine.SagaPastPivot), sessions.begin() as session:
        engine.fail_saga(session, deletion)
    assert _account(clean, user_id)[0] == "deleted"


def test_a_failed_restore_leaves_the_account_deleted(users: TestClient, clean: Stack, sessions: sessionmaker[Session]) -> None:
    user_id, deletion = _delete(users, clean)
    with sessions.begin() as session:
        engine.pass_pivot(session, deletion, SagaKind.DELETION)
    restore = uuid.UUID(users.post("/v1/users/restore", json={"email": "ann@example.com", "password": PASSWORD}).json()["saga"]["id"])
    with sessions.begin() as session:
        engine.begin_compensation(session, restore, RestoreStep.COMPLETE_RESTORE)
        engine.fail_saga(session, restore)
    assert _account(clean, user_id) == ("deleted", True, True)
    assert _steps(users, restore) == {"restore_profile": "compensated", "recall_address": "compensated", "complete_restore": "failed"}
    # It can be tried again.
    assert users.post("/v1/users/restore", json={"email": "ann@example.com", "password": PASSWORD}).status_code == 202


def test_only_a_deleted_account_within_its_period_is_restored(users: TestClient, clean: Stack, sessions: sessionmaker[Session]) -> None:
    user_id = registered(users, clean)
    active = users.post("/v1/users/restore", json={"email": "ann@example.com", "password": PASSWORD})
    assert (active.status_code, active.json()) == (409, {"detail": "account is not deleted"})
    unknown = users.post("/v1/users/restore", json={"email": "bob@example.com", "password": PASSWORD})
    assert (unknown.status_code, unknown.json()) == (401, {"detail": "invalid email or password"})

    deletion = uuid.UUID(users.delete("/v1/users/me", headers=bearer(login(users)["access_token"])).json()["id"])
    with sessions.begin() as session:
        engine.pass_pivot(session, deletion, SagaKind.DELETION)
    clean.query("users", "UPDATE user_account SET purge_after = now() - interval '1 second' WHERE id = %s", user_id)
    late = users.post("/v1/users/restore", json={"email": "ann@example.com", "password": PASSWORD})
    assert (late.status_code, late.json()) == (410, {"detail": "the restore period has ended"})


def test_after_the_period_the_account_is_purged_and_its_email_free(
    users: TestClient, clean: Stack, sessions: sessionmaker[Session]
) -> None:
    user_id, deletion = _delete(users, clean)
    assert watchdog.start_due_purges(sessions) == 0  # still deleting
    with sessions.begin() as session:
        engine.pass_pivot(session, deletion, SagaKind.DELETION)
    assert watchdog.start_due_purges(sessions) == 0  # within the restore period
    clean.query("users", "UPDATE user_account SET purge_after = now() - interval '1 second' WHERE id = %s", user_id)
    assert watchdog.start_due_purges(sessions) == 1
    assert watchdog.start_due_purges(sessions) == 0  # started once
    assert _account(clean, user_id)[0] == "purging"
    [(purge,)] = clean.query("users", "SELECT id FROM saga WHERE user_id = %s AND kind = 'purge'", user_id)
    assert clean.query("users", "SELECT kind FROM outbox_message WHERE saga_id = %s AND published_at IS NULL", purge) == [("start",)]
    assert users.post("/v1/users/restore", json={"email": "ann@example.com", "password": PASSWORD}).status_code == 410

    with sessions.begin() as session:
        engine.pass_pivot(session, purge, SagaKind.PURGE)  # type: ignore[arg-type]
    with sessions() as session:
        user = session.get_one(UserAccount, user_id)
        assert (user.account_status, user.email, user.first_name, user.password_hash) == (
            "purged",
            f"purged-{user_id}@purged.invalid",
            "",
            "",
        )
    assert users.get(f"/v1/sagas/{purge}").json()["status"] == "completed"
    # The email is free: a new registration is accepted, and the old password opens nothing.
    assert users.post("/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD}).status_code == 401
    again = users.post("/v1/register/", json={"email": "ann@example.com", "first_name": "A", "last_name": "N", "password": "x"})
    assert again.status_code == 202
    assert again.json()["id"] != user_id


def test_one_account_saga_at_a_time_per_user(users: TestClient, clean: Stack, sessions: sessionmaker[Session]) -> None:
    user_id, _ = _delete(users, clean)
    with pytest.raises(IntegrityError, match="uq_saga_user_id_in_flight"), sessions.begin() as session:
        engine.start_saga(session, session.get_one(UserAccount, user_id), SagaKind.RESTORE)
