"""Accounts under attack, with real parallel requests against the real processes.

Each test speaks for client addresses of its own (X-Forwarded-For straight to the users service,
which believes it from 127.0.0.1, its trusted proxy), so that its limits do not touch the other
tests'. Through the gateway every request is from 127.0.0.1.
"""

import itertools
import random
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import httpx

from tests.stack import Stack
from tests.utils.processes import another_users_api
from tests.utils.registration import register, unique_email

PASSWORD = "correct horse"  # what register() signs up with
_addresses = itertools.count(random.randrange(0, 60000))


def _address() -> str:
    """A client address of the test's own, in 198.18.0.0/15 (RFC 2544: never routed)."""
    n = next(_addresses)
    return f"198.18.{n // 256 % 256}.{n % 256}"


def _in_parallel(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Every call at once: threads released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


class Users:
    """The users service, directly, as one client address."""

    def __init__(self, system: Stack, address: str | None = None) -> None:
        self.system = system
        self.headers = {"X-Forwarded-For": address or _address()}

    def post(self, path: str, body: dict | None = None, token: str | None = None) -> httpx.Response:
        headers = {**self.headers, **({"Authorization": f"Bearer {token}"} if token else {})}
        return httpx.post(self.system.url("users", path), json=body, headers=headers, timeout=60)

    def request(self, method: str, path: str, token: str, body: dict | None = None) -> httpx.Response:
        headers = {**self.headers, "Authorization": f"Bearer {token}"}
        return httpx.request(method, self.system.url("users", path), json=body, headers=headers, timeout=60)

    def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return self.post("/v1/auth/login", {"email": email, "password": password})

    def me(self, token: str) -> int:
        return self.request("GET", "/v1/users/me", token).status_code

    def refresh(self, refresh_token: str) -> httpx.Response:
        return self.post("/v1/auth/refresh", {"refresh_token": refresh_token})


def _user(system: Stack) -> str:
    email = unique_email("session")
    with httpx.Client(timeout=60, headers={"X-Forwarded-For": _address()}) as client:
        assert register(client, system, email).status_code == 201
    return email


def test_two_sessions_and_a_password_change(system: Stack) -> None:
    email = _user(system)
    users = Users(system)
    a, b = (response.json() for response in _in_parallel([lambda: users.login(email)] * 2))
    assert users.me(a["access_token"]) == users.me(b["access_token"]) == 200

    changed = users.request("PATCH", "/v1/users/me", b["access_token"], {"password": "new password", "current_password": PASSWORD})
    assert changed.status_code == 200
    for session in (a, b):
        assert users.me(session["access_token"]) == 401
        assert users.request("DELETE", "/v1/users/me", session["access_token"]).status_code == 401
        assert users.refresh(session["refresh_token"]).status_code == 401
    assert users.me(users.login(email, "new password").json()["access_token"]) == 200


def test_a_login_racing_a_password_change_leaves_no_session_behind(system: Stack) -> None:
    for _ in range(3):
        email = _user(system)
        users = Users(system)
        changer = users.login(email).json()
        change = {"password": "new password", "current_password": PASSWORD}
        # Fewer racing logins than the account's failure limit: the late ones fail with 401, not 429.
        answers = _in_parallel(
            [partial(users.request, "PATCH", "/v1/users/me", changer["access_token"], change)] + [partial(users.login, email)] * 4
        )
        assert answers[0].status_code == 200
        assert {r.status_code for r in answers[1:]} <= {200, 401}
        # Every login that got in with the old password was overtaken by the change: its session is over.
        for login in (r.json() for r in answers[1:] if r.status_code == 200):
            assert users.me(login["access_token"]) == 401
            assert users.refresh(login["refresh_token"]).status_code == 401
        assert users.login(email, "new password").status_code == 200


def test_sixty_parallel_wrong_passwords_get_at_most_the_limits_401s(system: Stack) -> None:
    email = _user(system)
    users = Users(system)
    codes = Counter(r.status_code for r in _in_parallel([lambda: users.login(email, "wrong")] * 60))
    assert set(codes) <= {401, 429}
    assert 1 <= codes[401] <= 5  # USERS_LOGIN_MAX_FAILURES_PER_ACCOUNT
    # The account is locked for the window, from any address (the price of a per-account limit).
    assert Users(system).login(email).status_code == 429


def test_two_simultaneous_refreshes_of_one_token_get_the_same_pair(system: Stack) -> None:
    email = _user(system)
    users = Users(system)
    tokens = users.login(email).json()
    for _ in range(5):
        one, two = _in_parallel([partial(users.refresh, tokens["refresh_token"])] * 2)
        assert (one.status_code, two.status_code) == (200, 200), (one.text, two.text)
        assert one.json() == two.json()
        tokens = one.json()
        assert users.me(tokens["access_token"]) == 200
    assert users.refresh(tokens["refresh_token"]).status_code == 200


def test_a_burst_of_200_registrations_from_one_address_gets_429s_never_a_5xx(system: Stack) -> None:
    # A users API of its own with the default limits (the stack's are raised for the suites).
    defaults = {"USERS_REGISTER_RATE_LIMIT": ""}
    with another_users_api(system, "users-api-defaults", system.config.users_port + 91, defaults) as (url, _):
        address = _address()

        def sign_up(n: int) -> httpx.Response:
            body = {"email": unique_email(f"burst{n}"), "first_name": "B", "last_name": "U", "password": PASSWORD}
            return httpx.post(f"{url}/v1/register/", json=body, headers={"X-Forwarded-For": address}, timeout=60)

        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(sign_up, range(200)))
        codes = Counter(r.status_code for r in answers)
        assert set(codes) <= {201, 202, 429}, codes
        assert codes[201] + codes[202] <= 10  # USERS_REGISTER_RATE_LIMIT: 10 a minute
        refused = [r for r in answers if r.status_code == 429]
        assert len(refused) >= 190
        assert all(r.json() == {"detail": "too many requests, try again later"} and int(r.headers["Retry-After"]) > 0 for r in refused)
        # Another address is not held back.
        other = {"email": unique_email("after-burst"), "first_name": "B", "last_name": "U", "password": PASSWORD}
        assert httpx.post(f"{url}/v1/register/", json=other, headers={"X-Forwarded-For": _address()}, timeout=60).status_code == 201


def test_logout_all_through_the_gateway(system: Stack) -> None:
    email = _user(system)
    with httpx.Client(timeout=30) as client:  # the gateway sends its peer's address, 127.0.0.1, whatever the caller says

        def login() -> dict:
            response = client.post(system.url("gateway", "/v1/auth/login"), json={"email": email, "password": PASSWORD})
            assert response.status_code == 200, response.text
            return response.json()

        a, b = login(), login()
        bearer = {"Authorization": f"Bearer {a['access_token']}"}
        assert client.post(system.url("gateway", "/v1/auth/logout-all"), headers=bearer).status_code == 204
        for session in (a, b):
            me = client.get(system.url("gateway", "/v1/users/me"), headers={"Authorization": f"Bearer {session['access_token']}"})
            assert me.status_code == 401
            refreshed = client.post(system.url("gateway", "/v1/auth/refresh"), json={"refresh_token": session["refresh_token"]})
            assert refreshed.status_code == 401
        fresh = login()
        me = client.get(system.url("gateway", "/v1/users/me"), headers={"Authorization": f"Bearer {fresh['access_token']}"})
        assert me.status_code == 200
