"""The gateway's security duties, through the real nginx config on the test stack: headers on every
answer, Flower read-only, the client address owned by the gateway, and HTTPS when certificates
are given."""

import ssl
import subprocess
import uuid
from collections.abc import Iterator

import httpx
import pytest

from scripts import devstack
from tests.stack import Stack, wait_until
from tests.utils.registration import unique_email

FLOWER_WRITES = [
    "/flower/api/task/send-task/users.complete_registration",
    "/flower/api/task/async-apply/users.complete_registration",
    f"/flower/api/task/revoke/{uuid.uuid4()}?terminate=true",
    "/flower/api/task/rate-limit/users.complete_registration",
    "/flower/api/worker/shutdown/users@localhost",
    "/flower/api/worker/pool/grow/users@localhost",
    "/flower/api/worker/pool/shrink/users@localhost",
    "/flower/api/worker/pool/autoscale/users@localhost",
    "/flower/api/worker/pool/restart/users@localhost",
    "/flower/api/worker/queue/add-consumer/users@localhost",
]


def _assert_security_headers(response: httpx.Response) -> None:
    where = f"{response.request.method} {response.request.url} -> {response.status_code}"
    assert response.headers.get("server") == "nginx", where  # no version
    assert response.headers.get("x-content-type-options") == "nosniff", where
    assert response.headers.get("referrer-policy") == "no-referrer", where


def test_every_answer_says_no_version_and_carries_nosniff_and_a_referrer_policy(system: Stack, client: httpx.Client) -> None:
    gateway = system.url("gateway", "")
    answers = [
        client.get(f"{gateway}/healthz"),  # nginx's own
        client.get(f"{gateway}/nowhere"),  # nginx's JSON 404
        client.get(f"{gateway}/v1/users/1"),  # a service's
        client.post(f"{gateway}/v1/register/", json={}),  # a service's 422
        client.request("TRACE", f"{gateway}/v1/users/1"),  # nginx's 405
        client.post(f"{gateway}/flower/api/worker/shutdown/users@localhost"),  # nginx's 403
        client.post(f"{gateway}/v1/auth/login", json={"email": unique_email(), "password": "wrong"}),  # 401
    ]
    assert [a.status_code for a in answers] == [200, 404, answers[2].status_code, 422, 405, 403, 401]
    for answer in answers:
        _assert_security_headers(answer)
    assert answers[4].headers["allow"] == "GET, HEAD, POST"


def test_token_answers_are_never_cached(system: Stack, client: httpx.Client) -> None:
    gateway = system.url("gateway", "")
    for path, body in [("/v1/auth/login", {"email": unique_email(), "password": "wrong"}), ("/v1/auth/refresh", {"refresh_token": "x"})]:
        response = client.post(f"{gateway}{path}", json=body)
        assert response.headers.get("cache-control") == "no-store", path
    assert "no-store" not in client.get(f"{gateway}/v1/users/1").headers.get("cache-control", "")


def test_flower_is_read_only_through_the_gateway(system: Stack, client: httpx.Client) -> None:
    gateway = system.url("gateway", "")
    assert client.get(f"{gateway}/flower/").status_code == 200
    # HEAD goes through too (Flower answers it as it does directly).
    direct_head = client.head(f"http://127.0.0.1:{system.config.flower_port}/flower/").status_code
    assert client.head(f"{gateway}/flower/").status_code == direct_head
    assert client.get(f"{gateway}/flower/tasks").status_code == 200
    for path in FLOWER_WRITES:
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            for auth in (None, ("admin", "changethis")):
                response = client.request(method, f"{gateway}{path}", auth=auth)
                assert (response.status_code, response.json()) == (403, {"detail": "read-only through the gateway"}), (method, path)


def test_flowers_metrics_are_not_public(system: Stack, client: httpx.Client) -> None:
    assert client.get(f"http://127.0.0.1:{system.config.flower_port}/flower/metrics").status_code == 200  # Flower has them
    gateway = system.url("gateway", "")
    for path in ("/flower/metrics", "/flower//metrics", "/flower/metrics/", "/flower/%6Detrics", "/flower/metrics?format=text"):
        response = client.get(f"{gateway}{path}")
        assert (response.status_code, response.json()) == (404, {"detail": "not found"}), path


def test_a_spoofed_x_forwarded_for_neither_escapes_the_per_address_limit_nor_locks_that_address_out(
    system: Stack, client: httpx.Client
) -> None:
    store = system.redis()

    def forget_addresses() -> None:  # the gateway's address must not stay locked for the other tests
        for key in store.scan_iter("auth:failures:address:*"):
            store.delete(key)

    victim = "203.0.113.7"
    limit = int(system.env.get("USERS_LOGIN_MAX_FAILURES_PER_ADDRESS", "20"))
    gateway_login = system.url("gateway", "/v1/auth/login")
    forget_addresses()
    try:
        # A different account each time (the per-account limit stays out of it), and a header
        # naming another address each time, or the victim's.
        for attempt in range(limit):
            spoofed = victim if attempt % 2 else f"198.51.100.{attempt}"
            body = {"email": unique_email("spoof"), "password": "wrong"}
            assert client.post(gateway_login, json=body, headers={"X-Forwarded-For": spoofed}).status_code == 401
        body = {"email": unique_email("spoof"), "password": "wrong"}
        refused = client.post(gateway_login, json=body, headers={"X-Forwarded-For": "198.51.100.250"})
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        # Counted against the address the gateway saw (this machine), never the one claimed.
        assert [key.decode() for key in store.scan_iter("auth:failures:address:*")] == ["auth:failures:address:127.0.0.1"]
        # The victim, arriving through a proxy the users API trusts (as through the gateway), is not locked out.
        as_victim = client.post(
            system.url("users", "/v1/auth/login"), json={"email": unique_email(), "password": "wrong"}, headers={"X-Forwarded-For": victim}
        )
        assert as_victim.status_code == 401
    finally:
        forget_addresses()


@pytest.fixture
def tls_gateway(system: Stack) -> Iterator[tuple[str, str, ssl.SSLContext]]:
    """A second nginx with the same gateway config and a self-signed certificate made here."""
    nginx_dir = system.config.run_dir / "nginx-tls"
    certs = nginx_dir / "certs"
    certs.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(certs / "privkey.pem"), "-out", str(certs / "fullchain.pem")],
        check=True,
        capture_output=True,
    )  # fmt: skip
    http_port, https_port = system.config.gateway_port + 1, system.config.gateway_port + 363
    devstack.render_gateway(system.config, nginx_dir=nginx_dir, port=http_port, tls_port=https_port)
    assert (nginx_dir / "gateway-tls" / "tls.conf").exists()
    with (system.logs / "gateway-tls.log").open("ab") as log:
        process = subprocess.Popen(
            ["nginx", "-p", str(nginx_dir), "-c", str(nginx_dir / "nginx.conf"), "-g", "daemon off;"],
            env=system.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    trust = ssl.create_default_context(cafile=str(certs / "fullchain.pem"))
    https, http = f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}"
    try:

        def up() -> bool:
            assert process.poll() is None, (system.logs / "gateway-tls.log").read_text()[-2000:]
            return httpx.get(f"{https}/healthz", verify=trust, timeout=2).status_code == 200

        wait_until(up, timeout=30, what="the HTTPS gateway")
        yield https, http, trust
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_with_a_certificate_the_gateway_speaks_https_with_hsts_and_redirects_plain_http(
    tls_gateway: tuple[str, str, ssl.SSLContext], system: Stack
) -> None:
    https, http, trust = tls_gateway
    with httpx.Client(verify=trust, timeout=30) as client:
        secure = client.get(f"{https}/v1/users/1")
        assert secure.status_code in (200, 404)  # the users API answered, over TLS
        assert secure.headers["strict-transport-security"].startswith("max-age=")
        _assert_security_headers(secure)
        assert client.get(f"{https}/nowhere").headers["strict-transport-security"].startswith("max-age=")

        plain = client.get(f"{http}/v1/users/1?x=1")
        assert (plain.status_code, plain.headers["location"]) == (308, f"{https}/v1/users/1?x=1")
        assert "strict-transport-security" not in plain.headers  # only over HTTPS
        followed = client.get(f"{http}/v1/users/1", follow_redirects=True)
        assert str(followed.url).startswith(https)

        probe = client.get(f"{http}/healthz")  # the health probe stays on plain HTTP
        assert (probe.status_code, probe.json()) == (200, {"status": "ok"})


def test_without_a_certificate_the_gateway_serves_plain_http_only(system: Stack) -> None:
    assert not (system.config.run_dir / "nginx" / "gateway-tls" / "tls.conf").exists()
    response = httpx.get(system.url("gateway", "/v1/users/1"), timeout=30)
    assert response.status_code in (200, 404)
    assert "strict-transport-security" not in response.headers
