"""End-to-end: every process of the Procfile, started for real on the test ports."""

import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.stack import ROOT, Stack, command_line, wait_until


@pytest.fixture(scope="session")
def system(infra: Stack) -> Iterator[Stack]:
    infra.reset_data()
    infra.start_all()
    yield infra
    infra.stop_all()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


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


@contextmanager
def another_users_api(
    stack: Stack, name: str, port: int, settings: dict[str, str], preexec_fn: Callable[[], object] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """One more users API process (the Procfile's command on another port), beside the stack's."""
    command = command_line(stack, "users-api")
    command[command.index("--port") + 1] = str(port)
    env = {**stack.env, **settings}
    for unset in [k for k, v in settings.items() if v == ""]:
        env.pop(unset)  # the service's default
    with (stack.logs / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, preexec_fn=preexec_fn)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/healthz", timeout=1).status_code == 200, timeout=60, what=name)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=20)
