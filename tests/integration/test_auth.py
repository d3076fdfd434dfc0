"""Login, tokens and the current user: the users app in process, against real PostgreSQL and Redis."""

import time
from collections.abc import Iterator

import jwt
import pytest
from fastapi.testclient import TestClient

from saga import DEV_SIGNING_KEY, TokenType, encode_token, new_claims
from tests.stack import Stack
from tests.utils.accounts import PASSWORD, bearer, login, registered
from tests.utils.clients import users_client


@pytest.fixture
def users(clean: Stack) -> Iterator[TestClient]:
    with users_client() as client:
        yield client


def test_login_answers_with_the_user_id_and_a_token_pair(users: TestClient, clean: Stack) -> None:
    user_id = registered(users, clean)
    body = login(users, "ANN@example.com")
    assert set(body) == {"user_id", "access_token", "refresh_token", "token_type", "expires_in"}
    assert (body["user_id"], body["token_type"], body["expires_in"]) == (user_id, "bearer", 900)
    access = jwt.decode(body["access_token"], DEV_SIGNING_KEY, algorithms=["HS256"])
    refresh = jwt.decode(body["refresh_token"], DEV_SIGNING_KEY, algorithms=["HS256"])
    assert (access["sub"], access["typ"], access["exp"] - access["iat"]) == (str(user_id), "access", 900)
    assert (refresh["sub"], refresh["typ"], refresh["exp"] - refresh["iat"]) == (str(user_id), "refresh", 7 * 24 * 3600)
    assert refresh["fam"]
    assert access["jti"] != refresh["jti"]


def test_a_wrong_password_and_an_unknown_email_get_the_same_401(users: TestClient, clean: Stack) -> None:
    registered(users, clean)
    wrong_password = users.post("/v1/auth/login", json={"email": "ann@example.com", "password": "wrong"})
    unknown_email = users.post("/v1/auth/login", json={"email": "bob@example.com", "password": PASSWORD})
    not_an_email = users.post("/v1/auth/login", json={"email": "nobody", "password": PASSWORD})
    for response in (wrong_password, unknown_email, not_an_email):
        assert response.status_code == 401
        assert response.json() == {"detail": "invalid email or password"}
        assert "www-authenticate" not in response.headers


@pytest.mark.parametrize("status", ["pending", "failed"])
def test_only_a_completed_registration_can_log_in(users: TestClient, clean: Stack, status: str) -> None:
    registered(users, clean, status=status)
    response = users.post("/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD})
    assert response.status_code == 403
    assert response.json() == {"detail": "registration not completed"}
    # Only someone who knows the password learns that much.
    assert users.post("/v1/auth/login", json={"email": "ann@example.com", "password": "wrong"}).status_code == 401


def test_failed_logins_are_limited_per_account(clean: Stack) -> None:
    with users_client(login_max_failures_per_account=2, login_max_failures_per_address=100) as users:
        registered(users, clean)
        registered(users, clean, "bob@example.com")
        for _ in range(2):
            assert users.post("/v1/auth/login", json={"email": "ann@example.com", "password": "guess"}).status_code == 401
        blocked = users.post("/v1/auth/login", json={"email": "Ann@Example.com", "password": PASSWORD})
        assert blocked.status_code == 429
        assert 0 < int(blocked.headers["Retry-After"]) <= 900
        assert blocked.json() == {"detail": "too many failed logins, try again later"}
        # Another account from the same address is not affected.
        login(users, "bob@example.com")


def test_failed_logins_are_limited_per_client_address(clean: Stack) -> None:
    with users_client(login_max_failures_per_account=100, login_max_failures_per_address=3) as users:
        registered(users, clean)
        for name in ("a", "b", "c"):
            assert users.post("/v1/auth/login", json={"email": f"{name}@example.com", "password": "guess"}).status_code == 401
        blocked = users.post("/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD})
        assert blocked.status_code == 429
        assert int(blocked.headers["Retry-After"]) > 0


def test_a_successful_login_clears_the_accounts_failures(clean: Stack) -> None:
    with users_client(login_max_failures_per_account=2) as users:
        registered(users, clean)
        assert users.post("/v1/auth/login", json={"email": "ann@example.com", "password": "guess"}).status_code == 401
        login(users)
        assert users.post("/v1/auth/login", json={"email": "ann@example.com", "password": "guess"}).status_code == 401
        login(users)


def test_refresh_rotates_the_token_and_the_old_one_stops_working(users: TestClient, clean: Stack) -> None:
    registered(users, clean)
    first = login(users)
    second = users.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    assert second.json()["access_token"] != first["access_token"]
    assert users.get("/v1/users/me", headers=bearer(second.json()["access_token"])).status_code == 200
    third = users.post("/v1/auth/refresh", json={"refresh_token": second.json()["refresh_token"]})
    assert third.status_code == 200


def test_reusing_a_refresh_token_after_the_leeway_revokes_its_whole_family(clean: Stack) -> None:
    with users_client(refresh_reuse_leeway_seconds=0) as users:
        registered(users, clean)
        stolen = login(users)["refresh_token"]
        other_session = login(users)
        rotated = users.post("/v1/auth/refresh", json={"refresh_token": stolen}).json()
        assert users.get("/v1/users/me", headers=bearer(rotated["access_token"])).status_code == 200

        replay = users.post("/v1/auth/refresh", json={"refresh_token": stolen})
        assert replay.status_code == 401
        assert replay.json() == {"detail": "refresh token already used: the session is revoked, log in again"}
        # The legitimate holder's newer tokens belonged to the same family: revoked too, the access token at once.
        assert users.post("/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]}).status_code == 401
        assert users.get("/v1/users/me", headers=bearer(rotated["access_token"])).status_code == 401
        # Another login is another family, untouched.
        assert users.get("/v1/users/me", headers=bearer(other_session["access_token"])).status_code == 200
        assert users.post("/v1/auth/refresh", json={"refresh_token": other_session["refresh_token"]}).status_code == 200


def test_a_second_refresh_of_one_token_within_the_leeway_gets_the_same_pair(users: TestClient, clean: Stack) -> None:
    registered(users, clean)
    first = login(users)["refresh_token"]
    one = users.post("/v1/auth/refresh", json={"refresh_token": first})
    two = users.post("/v1/auth/refresh", json={"refresh_token": first})
    assert (one.status_code, two.status_code) == (200, 200)
    assert one.json() == two.json()
    assert users.post("/v1/auth/refresh", json={"refresh_token": one.json()["refresh_token"]}).status_code == 200


def test_a_refresh_token_whose_successor_was_rotated_is_reuse_even_within_the_leeway(users: TestClient, clean: Stack) -> None:
    registered(users, clean)
    stolen = login(users)["refresh_token"]
    second = users.post("/v1/auth/refresh", json={"refresh_token": stolen}).json()
    third = users.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}).json()
    # The holder moved on: the first token coming back now is not a concurrent retry.
    assert users.post("/v1/auth/refresh", json={"refresh_token": stolen}).status_code == 401
    assert users.get("/v1/users/me", headers=bearer(third["access_token"])).status_code == 401
    assert users.post("/v1/auth/refresh", json={"refresh_token": third["refresh_token"]}).status_code == 401


@pytest.mark.parametrize("kind", ["access", "garbage", "expired", "other key"])
def test_refresh_takes_only_a_valid_refresh_token(users: TestClient, clean: Stack, kind: str) -> None:
    user_id = registered(users, clean)
    tokens = login(users)
    now = int(time.time())
    token = {
        "access": tokens["access_token"],
        "garbage": "abc.def.ghi",
        "expired": encode_token(DEV_SIGNING_KEY, new_claims(TokenType.REFRESH, user_id, -10, now, family="f")),
        "other key": encode_token("o" * 32, new_claims(TokenType.REFRESH, user_id, 60, now, family="f")),
    }[kind]
    response = users.post("/v1/auth/refresh", json={"refresh_token": token})
    assert response.status_code == 401
    assert response.json() == {"detail": "invalid or expired refresh token"}


def test_logout_revokes_the_access_token_and_the_session(users: TestClient, clean: Stack) -> None:
    registered(users, clean)
    tokens = login(users)
    other = login(users)
    response = users.post("/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}, headers=bearer(tokens["access_token"]))
    assert response.status_code == 204
    assert users.get("/v1/users/me", headers=bearer(tokens["access_token"])).status_code == 401
    assert users.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401
    # The revocation expires with the token it revokes.
    ttl = clean.redis().ttl(f"auth:revoked:{jwt.decode(tokens['access_token'], options={'verify_signature': False})['jti']}")
    assert 0 < ttl <= 900
    # Another session of the same user goes on.
    assert users.get("/v1/users/me", headers=bearer(other["access_token"])).status_code == 200
    assert users.post("/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}).status_code == 200


def test_logout_needs_an_access_token(users: TestClient, clean: Stack) -> None:
    registered(users, clean)
    tokens = login(users)
    assert users.post("/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}).status_code == 401
    assert users.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 200


def test_the_current_user(users: TestClient, clean: Stack) -> None:
    user_id = registered(users, clean)
    me = users.get("/v1/users/me", headers=bearer(login(users)["access_token"]))
    assert me.status_code == 200
    assert me.json() | {"saga": None} == users.get(f"/v1/users/{user_id}").json() | {"saga": None}
    assert (me.json()["id"], me.json()["account_status"]) == (user_id, "active")
    assert "password" not in me.text


@pytest.mark.parametrize("kind", ["none", "garbage", "expired", "refresh", "other key", "not bearer"])
def test_the_current_user_needs_a_valid_access_token(users: TestClient, clean: Stack, kind: str) -> None:
    user_id = registered(users, clean)
    tokens = login(users)
    now = int(time.time())
    headers = {
        "none": {},
        "garbage": bearer("garbage"),
        "expired": bearer(encode_token(DEV_SIGNING_KEY, new_claims(TokenType.ACCESS, user_id, -10, now))),
        "refresh": bearer(tokens["refresh_token"]),
        "other key": bearer(encode_token("o" * 32, new_claims(TokenType.ACCESS, user_id, 60, now))),
        "not bearer": {"Authorization": f"Basic {tokens['access_token']}"},
    }[kind]
    for method in ("GET", "PATCH", "DELETE"):
        response = users.request(method, "/v1/users/me", headers=headers, json={"first_name": "X"} if method == "PATCH" else None)
        assert response.status_code == 401, (method, response.text)
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json()["detail"] in ("not authenticated", "invalid or expired token")
    assert users.get("/v1/users/me/", headers=headers).status_code == 401  # not a 422 for a non-numeric user id


def test_names_can_be_changed(users: TestClient, clean: Stack) -> None:
    user_id = registered(users, clean)
    headers = bearer(login(users)["access_token"])
    response = users.patch("/v1/users/me", json={"first_name": " Anna ", "last_name": "Lee-Smith"}, headers=headers)
    assert response.status_code == 200
    assert (response.json()["first_name"], response.json()["last_name"]) == ("Anna", "Lee-Smith")
    assert users.get(f"/v1/users/{user_id}").json()["first_name"] == "Anna"
    for body in ({"first_name": ""}, {"email": "new@example.com"}, {"password": "new"}):
        assert users.patch("/v1/users/me", json=body, headers=headers).status_code == 422


def test_a_password_change_needs_the_current_password_and_ends_every_session(users: TestClient, clean: Stack) -> None:
    registered(users, clean)
    tokens, other = login(users), login(users)
    headers = bearer(tokens["access_token"])
    wrong = users.patch("/v1/users/me", json={"password": "new password", "current_password": "wrong"}, headers=headers)
    assert wrong.status_code == 403
    assert wrong.json() == {"detail": "current password is incorrect"}

    changed = users.patch("/v1/users/me", json={"password": "new password", "current_password": PASSWORD}, headers=headers)
    assert changed.status_code == 200
    for refresh_token in (tokens["refresh_token"], other["refresh_token"]):
        assert users.post("/v1/auth/refresh", json={"refresh_token": refresh_token}).status_code == 401
    assert users.post("/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD}).status_code == 401
    login(users, password="new password")


def test_a_hash_made_with_older_parameters_is_upgraded_at_login(users: TestClient, clean: Stack) -> None:
    user_id = registered(users, clean)
    [(before,)] = clean.query("users", "SELECT password_hash FROM user_account WHERE id = %s", user_id)
    assert str(before).startswith("$argon2id$v=19$m=8192,t=1,")
    with users_client(argon2_time_cost=2, argon2_memory_cost_kib=16384) as stronger:
        login(stronger)
    [(after,)] = clean.query("users", "SELECT password_hash FROM user_account WHERE id = %s", user_id)
    assert str(after).startswith("$argon2id$v=19$m=16384,t=2,")
    login(users)  # the upgraded hash verifies, whatever the verifier's own parameters


def test_with_redis_down_login_fails_closed(users: TestClient, clean: Stack) -> None:
    registered(users, clean)
    clean.stop_redis()
    try:
        response = users.post("/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD})
    finally:
        clean.start_redis()
    assert response.status_code == 503
    assert response.json() == {"detail": "token store unavailable, try again"}


def test_the_openapi_docs_show_the_bearer_scheme(users: TestClient) -> None:
    spec = users.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An access token from POST /v1/auth/login",
    }
    for method in ("get", "patch", "delete"):
        assert spec["paths"]["/v1/users/me"][method]["security"] == [{"HTTPBearer": []}]
    assert spec["paths"]["/v1/auth/logout"]["post"]["security"] == [{"HTTPBearer": []}]
    assert {"/v1/auth/login", "/v1/auth/refresh", "/v1/users/restore", "/v1/sagas/{saga_id}"} <= set(spec["paths"])


def test_a_405_names_every_method_the_path_allows(users: TestClient) -> None:
    response = users.request("OPTIONS", "/v1/users/me")
    assert response.status_code == 405
    assert response.headers["Allow"] == "DELETE, GET, PATCH"
    assert users.put("/v1/auth/login").headers["Allow"] == "POST"
