"""Optional token enforcement on profile, subscription, emails and user endpoints, on and off.

Off (the default) the contract's scripts call them without tokens; on, each wants an access
token whose subject is the user addressed, verified locally with the shared key and checked
against Redis's revoked token ids.
"""

import time
import uuid
from collections.abc import Iterator

import jwt
import pytest
from fastapi.testclient import TestClient

from emails_svc.tasks import record_address
from profile_svc.tasks import create_profile
from saga import DEV_SIGNING_KEY, TokenType, encode_token, new_claims, revoked_key
from tests.stack import Stack
from tests.utils.accounts import bearer, login, registered
from tests.utils.clients import emails_client, profile_client, users_client


def _user(user_id: int) -> dict[str, object]:
    return {"user_id": user_id, "email": f"u{user_id}@example.com", "first_name": "U", "last_name": str(user_id)}


def _token(user_id: int, typ: TokenType = TokenType.ACCESS, ttl: int = 60, key: str = DEV_SIGNING_KEY) -> str:
    family = "f" if typ == TokenType.REFRESH else None
    return encode_token(key, new_claims(typ, user_id, ttl, int(time.time()), family=family))


@pytest.fixture
def guarded_profile(clean: Stack) -> Iterator[TestClient]:
    for user_id in (1, 2):
        create_profile.run(str(uuid.uuid4()), _user(user_id))
    with profile_client(require_access_token=True) as client:
        yield client


@pytest.fixture
def guarded_emails(clean: Stack) -> Iterator[TestClient]:
    for user_id in (1, 2):
        record_address.run(str(uuid.uuid4()), _user(user_id))
    with emails_client(require_access_token=True) as client:
        yield client


PROFILE_CALLS = [
    ("GET", "/v1/profile/{user}", None),
    ("POST", "/v1/profile/add/", {"user_id": "{user}", "account_type": 1, "iban": "XX1111"}),
    ("POST", "/v1/subscription/add/", {"user_id": "{user}"}),
    ("GET", "/v1/subscription/{user}", None),
]


def _call(client: TestClient, method: str, path: str, body: dict | None, user: int, headers: dict[str, str]) -> int:
    if body is not None:
        body = {k: user if v == "{user}" else v for k, v in body.items()}
    return client.request(method, path.format(user=user), json=body, headers=headers).status_code


@pytest.mark.parametrize(("method", "path", "body"), PROFILE_CALLS)
def test_profile_endpoints_want_the_owners_token_when_required(
    guarded_profile: TestClient, clean: Stack, method: str, path: str, body: dict | None
) -> None:
    assert _call(guarded_profile, method, path, body, 1, {}) == 401
    assert _call(guarded_profile, method, path, body, 1, bearer(_token(2))) == 403
    assert _call(guarded_profile, method, path, body, 1, bearer(_token(1))) in (200, 201, 404)  # 404: no subscription yet


@pytest.mark.parametrize(
    ("kind", "token"),
    [
        ("expired", lambda: _token(1, ttl=-10)),
        ("refresh", lambda: _token(1, TokenType.REFRESH)),
        ("other key", lambda: _token(1, key="o" * 32)),
        ("garbage", lambda: "garbage"),
    ],
)
def test_invalid_tokens_are_401_when_required(guarded_profile: TestClient, kind: str, token: object) -> None:
    response = guarded_profile.get("/v1/profile/1", headers=bearer(token()))  # type: ignore[operator]
    assert response.status_code == 401, kind
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_token_revoked_by_the_users_service_is_refused(guarded_profile: TestClient, clean: Stack) -> None:
    token = _token(1)
    assert guarded_profile.get("/v1/profile/1", headers=bearer(token)).status_code == 200
    clean.redis().set(revoked_key(jwt.decode(token, options={"verify_signature": False})["jti"]), 1, ex=60)
    assert guarded_profile.get("/v1/profile/1", headers=bearer(token)).status_code == 401


def test_a_token_from_login_opens_the_users_own_profile(guarded_profile: TestClient, clean: Stack) -> None:
    with users_client() as users:
        user_id = registered(users, clean)
        tokens = login(users)
    assert user_id == 1  # the fixture made profiles 1 and 2
    assert guarded_profile.get(f"/v1/profile/{user_id}", headers=bearer(tokens["access_token"])).status_code == 200
    with users_client() as users:
        users.post("/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}, headers=bearer(tokens["access_token"]))
    assert guarded_profile.get(f"/v1/profile/{user_id}", headers=bearer(tokens["access_token"])).status_code == 401


def test_a_user_is_shown_only_to_its_owner_when_required(clean: Stack) -> None:
    with users_client(require_access_token=True) as users:
        user_id = registered(users, clean)
        other = registered(users, clean, "bob@example.com")
        tokens = login(users)
        assert users.get(f"/v1/users/{user_id}").status_code == 401
        assert users.get(f"/v1/users/{user_id}", headers=bearer("garbage")).status_code == 401
        assert users.get(f"/v1/users/{user_id}", headers=bearer(_token(other))).status_code == 403
        assert users.get(f"/v1/users/{other}", headers=bearer(tokens["access_token"])).status_code == 403
        assert users.get(f"/v1/users/{other + 1}", headers=bearer(tokens["access_token"])).status_code == 403  # no hint it is missing
        mine = users.get(f"/v1/users/{user_id}", headers=bearer(tokens["access_token"]))
        assert mine.status_code == 200
        assert mine.json()["email"] == "ann@example.com"
        spec = users.get("/openapi.json").json()
        assert spec["paths"]["/v1/users/{user_id}"]["get"]["security"] == [{"HTTPBearer": []}]
        assert "security" not in spec["paths"]["/v1/register/"]["post"]


def test_without_the_setting_a_user_is_shown_to_anyone(clean: Stack) -> None:
    with users_client() as users:
        user_id = registered(users, clean)
        assert users.get(f"/v1/users/{user_id}").status_code == 200
        assert users.get(f"/v1/users/{user_id}", headers=bearer("garbage")).status_code == 200  # not even looked at
        assert "security" not in users.get("/openapi.json").json()["paths"]["/v1/users/{user_id}"]["get"]


def test_emails_endpoints_want_the_owners_token_when_required(guarded_emails: TestClient) -> None:
    mail = {"user_id": 1, "subject": "s", "body": "b"}
    assert guarded_emails.post("/v1/emails/send/", json=mail).status_code == 401
    assert guarded_emails.post("/v1/emails/send/", json=mail, headers=bearer(_token(2))).status_code == 403
    sent = guarded_emails.post("/v1/emails/send/", json=mail, headers=bearer(_token(1)))
    assert sent.status_code == 202
    location = sent.headers["Location"]
    assert guarded_emails.get(location).status_code == 401
    assert guarded_emails.get(location, headers=bearer(_token(2))).status_code == 403
    assert guarded_emails.get(location, headers=bearer(_token(1))).status_code == 200


def test_without_the_setting_no_token_is_needed(profile: TestClient, emails: TestClient) -> None:
    create_profile.run(str(uuid.uuid4()), _user(1))
    record_address.run(str(uuid.uuid4()), _user(1))
    assert profile.get("/v1/profile/1").status_code == 200
    assert profile.get("/v1/profile/1", headers=bearer("garbage")).status_code == 200  # not even looked at
    assert emails.post("/v1/emails/send/", json={"user_id": 1, "subject": "s", "body": "b"}).status_code == 202


def test_the_openapi_docs_show_the_bearer_scheme_only_when_required(
    profile: TestClient, emails: TestClient, guarded_profile: TestClient, guarded_emails: TestClient
) -> None:
    for guarded, free, path, method in (
        (guarded_profile, profile, "/v1/profile/{user_id}", "get"),
        (guarded_emails, emails, "/v1/emails/send/", "post"),
    ):
        spec = guarded.get("/openapi.json").json()
        assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        assert spec["paths"][path][method]["security"] == [{"HTTPBearer": []}]
        spec = free.get("/openapi.json").json()
        assert "security" not in spec["paths"][path][method]
        assert "securitySchemes" not in spec.get("components", {})
