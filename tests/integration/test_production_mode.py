"""Production mode, with the processes the Procfile starts: a key written in the repository stops
each at start with one line naming it; with a real key, tokens signed with the repository's are
refused (401) by every endpoint that requires a token.
"""

import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from saga import DEV_SIGNING_KEY, STARTUP_FAILURE, TokenType, encode_token, new_claims
from tests.stack import ROOT, Stack, wait_until
from tests.utils.accounts import bearer

# The keys the repository writes down (the development default) or its tests build.
REPOSITORY_KEYS = [DEV_SIGNING_KEY, "k" * 32, "o" * 32, "s" * 40]
PREFIXES = {"users": "USERS", "profile": "PROFILE", "emails": "EMAILS"}
NOBODY = 2**31 - 1  # a user id no test registers


# Production refuses the test stack's Redis password (it is written in the repository), so these
# processes reach the same Redis as a user of their own with a password made for this run.
_BROKER_PASSWORD = secrets.token_hex(16)


@pytest.fixture(autouse=True, scope="module")
def _production_broker_user(infra: Stack) -> Iterator[None]:
    infra.redis().execute_command("ACL", "SETUSER", "production-test", "on", f">{_BROKER_PASSWORD}", "~*", "&*", "+@all")
    yield
    infra.redis().execute_command("ACL", "DELUSER", "production-test")


def _production_env(stack: Stack, key: str, **extra: str) -> dict[str, str]:
    env = dict(stack.env)
    broker = urlsplit(stack.config.broker_url)
    broker_url = broker._replace(netloc=f"production-test:{_BROKER_PASSWORD}@{broker.hostname}:{broker.port}").geturl()
    for prefix in PREFIXES.values():
        env |= {
            f"{prefix}_ENVIRONMENT": "production",
            f"{prefix}_JWT_SIGNING_KEY": key,
            f"{prefix}_REQUIRE_ACCESS_TOKEN": "true",
            f"{prefix}_BROKER_URL": broker_url,
        }
    return env | extra


def _procfile_command(stack: Stack, process: str) -> list[str]:
    return ["bash", "-c", f"exec {stack.commands[process].strip()}"]  # as the stack runs it: $PORTs expanded


def _run_until_exit(stack: Stack, process: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_procfile_command(stack, process), env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(("service", "key"), list(zip([*PREFIXES, "users"], REPOSITORY_KEYS, strict=True)))
def test_each_api_refuses_to_start_with_a_key_from_the_repository(infra: Stack, service: str, key: str) -> None:
    env = _production_env(infra, key, **{f"{service.upper()}_PORT": str(_free_port())})
    finished = _run_until_exit(infra, f"{service}-api", env)
    reason = "is a placeholder" if key == DEV_SIGNING_KEY else "has fewer than 5 different characters"
    assert finished.returncode == STARTUP_FAILURE
    assert f"refusing to start: {PREFIXES[service]}_JWT_SIGNING_KEY {reason}; set it (openssl rand -hex 32)" in finished.stderr.splitlines()
    assert "Traceback" not in finished.stderr


@pytest.mark.parametrize(
    "process",
    [
        *("users-api", "users-worker", "users-relay", "profile-api", "profile-worker", "profile-retention"),
        *("emails-api", "emails-worker", "emails-mail-worker", "emails-relay"),
    ],
)
def test_every_process_refuses_the_placeholder_database_password(infra: Stack, process: str) -> None:
    service = process.split("-")[0]
    variable = f"{PREFIXES[service]}_DATABASE_URL"
    env = _production_env(infra, secrets.token_hex(32), **{variable: f"postgresql+psycopg2://app:changethis@127.0.0.1:1/{service}"})
    finished = _run_until_exit(infra, process, env | {f"{service.upper()}_PORT": str(_free_port())})
    assert finished.returncode == STARTUP_FAILURE
    assert finished.stderr.splitlines() == [
        f"refusing to start: the password in {variable} is a placeholder; set it (openssl rand -hex 16)"
    ]


@pytest.fixture(scope="module")
def production_apis(infra: Stack) -> Iterator[dict[str, str]]:
    """The three APIs in production mode with a real key and tokens required, on ports of their own."""
    key = secrets.token_hex(32)
    ports = {service: _free_port() for service in PREFIXES}
    env = _production_env(infra, key, **{f"{service.upper()}_PORT": str(port) for service, port in ports.items()})
    running = [
        subprocess.Popen(
            _procfile_command(infra, f"{service}-api"),
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for service in PREFIXES
    ]
    try:
        for port in ports.values():
            wait_until(lambda port=port: _answers(port), timeout=60, what=f"the API on {port}")
        yield {service: f"http://127.0.0.1:{port}" for service, port in ports.items()} | {"key": key}
    finally:
        for process in running:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _token(key: str, user_id: int = NOBODY) -> str:
    return encode_token(key, new_claims(TokenType.ACCESS, user_id, 60, int(time.time())))


def _guarded_calls(apis: dict[str, str]) -> list[tuple[str, str, dict[str, object] | None]]:
    return [
        ("GET", f"{apis['users']}/v1/users/me", None),
        ("GET", f"{apis['users']}/v1/users/{NOBODY}", None),
        ("GET", f"{apis['profile']}/v1/profile/{NOBODY}", None),
        ("POST", f"{apis['profile']}/v1/subscription/add/", {"user_id": NOBODY}),
        ("POST", f"{apis['emails']}/v1/emails/send/", {"user_id": NOBODY, "subject": "s", "body": "b"}),
    ]


@pytest.mark.parametrize("key", REPOSITORY_KEYS)
def test_a_token_signed_with_a_repository_key_is_refused_everywhere(production_apis: dict[str, str], key: str) -> None:
    for method, url, body in _guarded_calls(production_apis):
        response = httpx.request(method, url, json=body, headers=bearer(_token(key)), timeout=30)
        assert response.status_code == 401, (url, response.text)


def test_a_token_signed_with_the_real_key_gets_past_the_check(production_apis: dict[str, str]) -> None:
    # The token's user does not exist: /me says the token is no good (401), the rest 404.
    token = _token(production_apis["key"])
    statuses = [
        httpx.request(m, url, json=body, headers=bearer(token), timeout=30).status_code for m, url, body in _guarded_calls(production_apis)
    ]
    assert statuses == [401, 404, 404, 404, 404]
