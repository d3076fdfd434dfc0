"""Ending sessions everywhere, attempts counted first, throttling and hash slots.

The users app in process against real PostgreSQL and Redis, with profile and emails requiring
tokens, as they do with enforcement on. The concurrent versions run against the real processes
in tests/e2e/test_sessions.py.
"""

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from emails_svc.tasks import record_address
from profile_svc.tasks import create_profile
from tests.stack import Stack
from tests.utils.accounts import PASSWORD, bearer, login, registered
from tests.utils.clients import emails_client, profile_client, users_client


@pytest.fixture
def users(clean: Stack) -> Iterator[TestClient]:
    with users_client() as client:
        yield client


@pytest.fixture
def profile(clean: Stack) -> Iterator[TestClient]:
    with profile_client(require_access_token=True) as client:
        yield client


@pytest.fixture
def emails(clean: Stack) -> Iterator[TestClient]:
    with emails_client(require_access_token=True) as client:
        yield client


def _signed_up(users: TestClient, stack: Stack) -> int:
    """A registered user whose profile and address the other services know (no workers run here)."""
    user_id = registered(users, stack)
    details = {"user_id": user_id, "email": "ann@example.com", "first_name": "Ann", "last_name": "Lee"}
    create_profile.run(str(uuid.uuid4()), details)
    record_address.run(str(uuid.uuid4()), details)
    return user_id


def _answers(users: TestClient, profile: TestClient, emails: TestClient, user_id: int, access_token: str) -> tuple[int, int, int]:
    """What users, profile and emails answer to the token."""
    headers = bearer(access_token)
    return (
        users.get("/v1/users/me", headers=headers).status_code,
        profile.get(f"/v1/profile/{user_id}", headers=headers).status_code,
        emails.post("/v1/emails/send/", json={"user_id": user_id, "subject": "s", "body": "b"}, headers=headers).status_code,
    )


ACCEPTED = (200, 200, 202)
REFUSED = (401, 401, 401)


def test_a_password_change_ends_every_session_everywhere_at_once(
    users: TestClient, profile: TestClient, emails: TestClient, clean: Stack
) -> None:
    user_id = _signed_up(users, clean)
    a, b = login(users), login(users)
    assert _answers(users, profile, emails, user_id, a["access_token"]) == ACCEPTED

    change = {"password": "new password", "current_password": PASSWORD}
    changed = users.patch("/v1/users/me", json=change, headers=bearer(b["access_token"]))
    assert changed.status_code == 200
    for session in (a, b):
        assert _answers(users, profile, emails, user_id, session["access_token"]) == REFUSED
        assert users.delete("/v1/users/me", headers=bearer(session["access_token"])).status_code == 401
        assert users.post("/v1/auth/refresh", json={"refresh_token": session["refresh_token"]}).status_code == 401
    # A login right after the change, within the same second, is a new session and works everywhere.
    fresh = login(users, password="new password")
    assert _answers(users, profile, emails, user_id, fresh["access_token"]) == ACCEPTED


def test_logout_all_ends_every_session_everywhere(users: TestClient, profile: TestClient, emails: TestClient, clean: Stack) -> None:
    user_id = _signed_up(users, clean)
    a, b = login(users), login(users)
    assert users.post("/v1/auth/logout-all", headers=bearer(a["access_token"])).status_code == 204
    for session in (a, b):
        assert _answers(users, profile, emails, user_id, session["access_token"]) == REFUSED
        assert users.post("/v1/auth/refresh", json={"refresh_token": session["refresh_token"]}).status_code == 401
    assert users.post("/v1/auth/logout-all", headers=bearer(a["access_token"])).status_code == 401
    assert users.post("/v1/auth/logout-all").status_code == 401
    assert _answers(users, profile, emails, user_id, login(users)["access_token"]) == ACCEPTED
    assert users.get("/openapi.json").json()["paths"]["/v1/auth/logout-all"]["post"]["security"] == [{"HTTPBearer": []}]


def test_a_deletion_ends_every_session_everywhere(users: TestClient, profile: TestClient, emails: TestClient, clean: Stack) -> None:
    user_id = _signed_up(users, clean)
    a, b = login(users), login(users)
    assert users.delete("/v1/users/me", headers=bearer(a["access_token"])).status_code in (200, 202)
    for session in (a, b):
        # Profile and address are still there (no workers run the deletion saga here): the token is what is refused.
        assert _answers(users, profile, emails, user_id, session["access_token"]) == REFUSED


def test_a_reused_refresh_token_ends_the_access_tokens_of_its_session_everywhere(
    profile: TestClient, emails: TestClient, clean: Stack
) -> None:
    with users_client(refresh_reuse_leeway_seconds=0) as users:
        user_id = _signed_up(users, clean)
        stolen, other = login(users), login(users)
        rotated = users.post("/v1/auth/refresh", json={"refresh_token": stolen["refresh_token"]}).json()
        assert users.post("/v1/auth/refresh", json={"refresh_token": stolen["refresh_token"]}).status_code == 401
        for access_token in (stolen["access_token"], rotated["access_token"]):
            assert _answers(users, profile, emails, user_id, access_token) == REFUSED
        assert _answers(users, profile, emails, user_id, other["access_token"]) == ACCEPTED


def test_logout_ends_its_sessions_access_tokens_everywhere(
    users: TestClient, profile: TestClient, emails: TestClient, clean: Stack
) -> None:
    user_id = _signed_up(users, clean)
    first, other = login(users), login(users)
    rotated = users.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    response = users.post("/v1/auth/logout", json={"refresh_token": rotated["refresh_token"]}, headers=bearer(rotated["access_token"]))
    assert response.status_code == 204
    # The session's earlier access token too, not only the one presented.
    for access_token in (first["access_token"], rotated["access_token"]):
        assert _answers(users, profile, emails, user_id, access_token) == REFUSED
    assert _answers(users, profile, emails, user_id, other["access_token"]) == ACCEPTED


def test_a_wrong_current_password_counts_against_the_accounts_limit(clean: Stack) -> None:
    with users_client(login_max_failures_per_account=2) as users:
        registered(users, clean)
        headers = bearer(login(users)["access_token"])
        change = {"password": "new password", "current_password": "wrong"}
        assert [users.patch("/v1/users/me", json=change, headers=headers).status_code for _ in range(3)] == [403, 403, 429]
        right = users.patch("/v1/users/me", json={**change, "current_password": PASSWORD}, headers=headers)
        assert right.status_code == 429
        assert int(right.headers["Retry-After"]) > 0


def test_wrong_restore_passwords_are_limited(clean: Stack) -> None:
    with users_client(login_max_failures_per_account=2) as users:
        registered(users, clean)
        attempt = {"email": "ann@example.com", "password": "wrong"}
        assert [users.post("/v1/users/restore", json=attempt).status_code for _ in range(3)] == [401, 401, 429]


def test_a_right_password_gives_the_address_its_attempt_back(clean: Stack) -> None:
    with users_client(login_max_failures_per_account=100, login_max_failures_per_address=2) as users:
        registered(users, clean)
        for _ in range(5):
            login(users)
        assert users.post("/v1/auth/login", json={"email": "x@example.com", "password": "wrong"}).status_code == 401
        login(users)


@pytest.mark.parametrize(
    ("action", "setting", "path", "body"),
    [
        (
            "register",
            "register_rate_limit",
            "/v1/register/",
            {"email": "{n}@example.com", "first_name": "A", "last_name": "B", "password": "p"},
        ),
        ("login", "login_rate_limit", "/v1/auth/login", {"email": "{n}@example.com", "password": "p"}),
        ("restore", "restore_rate_limit", "/v1/users/restore", {"email": "{n}@example.com", "password": "p"}),
    ],
)
def test_requests_are_throttled_per_client_address(clean: Stack, action: str, setting: str, path: str, body: dict) -> None:
    with users_client(**{setting: "3/minute", "login_max_failures_per_address": 100}) as users:
        answers = [users.post(path, json={k: v.format(n=n) for k, v in body.items()}) for n in range(4)]  # one client address
        assert [a.status_code for a in answers[:3]] == [{"register": 202}.get(action, 401)] * 3
        assert answers[3].status_code == 429, action
        assert answers[3].json() == {"detail": "too many requests, try again later"}
        assert 0 < int(answers[3].headers["Retry-After"]) <= 60
        assert clean.redis().keys("auth:throttle*")


def test_a_malformed_rate_limit_setting_is_refused_at_startup() -> None:
    from pydantic import ValidationError

    from users_svc.config import Settings

    with pytest.raises(ValidationError, match="couldn't parse rate limit"):
        Settings(database_url="postgresql://x/y", broker_url="redis://x", register_rate_limit="lots")


def test_with_every_hash_slot_taken_a_request_waits_then_gets_503(clean: Stack) -> None:
    with users_client(hash_concurrency=1, hash_wait_seconds=0) as users:
        registered(users, clean)
        slots = users.app.state.hash_slots  # type: ignore[attr-defined]
        with slots.slot():  # a hash in progress
            for response in (
                users.post("/v1/register/", json={"email": "bob@example.com", "first_name": "B", "last_name": "C", "password": "p"}),
                users.post("/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD}),
            ):
                assert response.status_code == 503
                assert response.json() == {"detail": "too many passwords being checked, try again"}
                assert int(response.headers["Retry-After"]) > 0
        login(users)  # the slot is free again
