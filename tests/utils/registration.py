"""Signing up through the running system's HTTP API and following the saga."""

import uuid

import httpx

from tests.stack import Stack, wait_until


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def register(client: httpx.Client, system: Stack, email: str, via: str = "users") -> httpx.Response:
    body = {"email": email, "first_name": "Test", "last_name": "User", "password": "correct horse"}
    return client.post(system.url(via, "/v1/register/"), json=body)


def saga_of(client: httpx.Client, system: Stack, saga_id: str) -> dict:
    return client.get(system.url("users", f"/v1/register/{saga_id}")).json()


def wait_for_saga(client: httpx.Client, system: Stack, saga_id: str, *statuses: str, timeout: float = 60) -> dict:
    """Wait until the saga reaches one of the statuses and has nothing left in flight."""

    def settled() -> dict | None:
        saga = saga_of(client, system, saga_id)
        steps = {step["step"]: step["status"] for step in saga["steps"]}
        if saga["status"] in statuses and (saga["status"] != "completed" or steps["send_welcome_email"] == "done"):
            return saga
        return None

    return wait_until(settled, timeout=timeout, what=f"saga {saga_id} to reach {statuses}")  # type: ignore[return-value]
