import json

import pytest
import redis
from fastapi.testclient import TestClient

from tests.stack import Stack
from tests.utils.clients import users_client

VALID = {"email": "ann@example.com", "first_name": "Ann", "last_name": "Lee", "active": "False", "password": "x"}


def test_registration_is_recorded_and_its_saga_queued_on_the_profile_queue(users: TestClient, clean: Stack) -> None:
    response = users.post("/v1/register/", json=VALID)
    assert response.status_code == 202  # no worker runs the saga here
    body = response.json()
    assert body["active"] is False
    assert body["registration_status"] == "pending"
    assert response.headers["Location"] == body["saga"]["url"] == f"/v1/register/{body['saga']['id']}"
    # The chain's first step sits on the profile service's queue, and nowhere else.
    assert clean.redis().llen("profile") == 1
    assert clean.redis().llen("users") == clean.redis().llen("emails") == clean.redis().llen("mail") == 0
    assert clean.query("users", "SELECT count(*) FROM outbox_message WHERE published_at IS NULL") == [(0,)]

    saga = users.get(body["saga"]["url"]).json()
    assert saga["status"] == "running"
    assert [(s["step"], s["status"]) for s in saga["steps"]] == [
        ("create_profile", "pending"),
        ("record_address", "pending"),
        ("complete_registration", "pending"),
        ("send_welcome_email", "pending"),
    ]


def test_the_app_publishes_to_the_broker_of_the_settings_it_was_given(clean: Stack) -> None:
    other_database = clean.config.broker_url.rsplit("/", 1)[0] + "/1"
    with users_client(broker_url=other_database) as users:
        assert users.post("/v1/register/", json=VALID).status_code == 202
    assert redis.Redis.from_url(other_database).llen("profile") == 1
    assert clean.redis().llen("profile") == 0


def test_password_is_stored_only_as_an_argon2id_hash_and_never_shown(users: TestClient, clean: Stack) -> None:
    response = users.post("/v1/register", json=VALID | {"password": "hunter2-secret"})
    user_id = response.json()["id"]
    [(stored,)] = clean.query("users", "SELECT password_hash FROM user_account WHERE id = %s", user_id)
    assert str(stored).startswith("$argon2id$")
    for text in (response.text, users.get(f"/v1/users/{user_id}").text):
        assert "hunter2" not in text
        assert "argon2" not in text
        assert "password" not in text


def test_a_registration_accepted_while_redis_is_down_waits_in_the_outbox(users: TestClient, clean: Stack) -> None:
    clean.stop_redis()
    try:
        response = users.post("/v1/register/", json=VALID)
        assert response.status_code == 202
        assert clean.query("users", "SELECT count(*) FROM outbox_message WHERE published_at IS NULL") == [(1,)]
        assert users.get("/readyz").status_code == 503
    finally:
        clean.start_redis()
    assert users.get("/readyz").json() == {"status": "ready", "database": "ok", "broker": "ok"}


@pytest.mark.parametrize("email", ["ann@example.com", "ANN@Example.COM"])
def test_a_duplicate_email_is_refused_whatever_its_case(users: TestClient, email: str) -> None:
    assert users.post("/v1/register/", json=VALID).status_code == 202
    response = users.post("/v1/register/", json=VALID | {"email": email})
    assert response.status_code == 409
    assert response.json() == {"detail": "email already registered"}


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[]",
        '"a string"',
        json.dumps({k: v for k, v in VALID.items() if k != "email"}),
        json.dumps(VALID | {"email": "not-an-email"}),
        json.dumps(VALID | {"first_name": 42}),
        json.dumps(VALID | {"first_name": "   "}),
        json.dumps(VALID | {"last_name": "x" * 101}),
        json.dumps(VALID | {"active": "maybe"}),
        json.dumps(VALID | {"password": ""}),
        json.dumps(VALID | {"password": "x" * 1025}),
        json.dumps(VALID | {"email": None}),
        # Found by schemathesis (scripts/fuzz.py): each was a 500 or a 400 before.
        json.dumps(VALID | {"last_name": "Nul\u0000Byte"}),
        '{"email": "a@example.com", "first_name": "\\udb1c", "last_name": "L", "password": "x"}',
        json.dumps(VALID | {"password": "\udb1c"}),
        b"\xff\x1cd\xfe",
    ],
)
def test_invalid_input_gets_a_json_422(users: TestClient, body: str | bytes) -> None:
    response = users.post("/v1/register/", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "detail" in response.json()


@pytest.mark.parametrize(
    ("path", "status"),
    [("/v1/users/5", 404), ("/v1/users/abc", 404), ("/v1/users/0", 422), ("/v1/users/99999999999999999999", 422)],
)
def test_user_lookups_never_fail_with_a_500(users: TestClient, path: str, status: int) -> None:
    response = users.get(path)
    assert response.status_code == status
    assert "detail" in response.json()


def test_paths_work_with_and_without_the_trailing_slash_without_redirects(users: TestClient) -> None:
    user_id = users.post("/v1/register", json=VALID).json()["id"]
    assert users.get(f"/v1/users/{user_id}", follow_redirects=False).status_code == 200
    assert users.get(f"/v1/users/{user_id}/", follow_redirects=False).status_code == 200


def test_unknown_sagas_are_404_and_malformed_ids_422(users: TestClient) -> None:
    assert users.get("/v1/register/00000000-0000-4000-8000-000000000000").status_code == 404
    assert users.get("/v1/register/nope").status_code == 422


def test_request_ids_are_passed_through(users: TestClient) -> None:
    assert users.get("/healthz", headers={"X-Request-ID": "abc"}).headers["X-Request-ID"] == "abc"
    assert users.get("/healthz").headers["X-Request-ID"]
