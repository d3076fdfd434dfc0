"""Helpers for the accounts tests: a users app with cheap hashes, registered users, logins."""

from fastapi.testclient import TestClient

from tests.stack import Stack
from users_svc.config import get_settings
from users_svc.main import create_app

PASSWORD = "correct horse"
CHEAP_HASHES = {"argon2_time_cost": 1, "argon2_memory_cost_kib": 8192}


def users_client(**overrides: object) -> TestClient:
    # No workers run in integration tests, so sagas never finish: don't wait for them.
    settings = get_settings().model_copy(update={"register_wait_seconds": 0.05, **CHEAP_HASHES, **overrides})
    return TestClient(create_app(settings), raise_server_exceptions=False)


def registered(users: TestClient, stack: Stack, email: str = "ann@example.com", *, status: str = "completed") -> int:
    """A user whose registration saga reached ``status`` (no workers run here: set it directly)."""
    response = users.post("/v1/register/", json={"email": email, "first_name": "Ann", "last_name": "Lee", "password": PASSWORD})
    user_id = response.json()["id"]
    stack.query("users", "UPDATE user_account SET registration_status = %s WHERE id = %s", status, user_id)
    return user_id


def login(users: TestClient, email: str = "ann@example.com", password: str = PASSWORD) -> dict:
    response = users.post("/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
