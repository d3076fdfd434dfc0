"""Accounts in the users app in process: registered users, logins, tokens in headers."""

from fastapi.testclient import TestClient

from tests.stack import Stack

PASSWORD = "correct horse"


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
