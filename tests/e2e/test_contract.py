"""The contract's acceptance calls, line by line, as assertions; and the project's smoke script
(scripts/smoke.sh, the same calls with curl) run for real against the same stack.

Run directly against each service and again through the nginx gateway. The calls have no
pauses, so neither do these requests.
"""

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.stack import Stack, wait_until

SMOKE = Path(__file__).resolve().parents[2] / "scripts" / "smoke.sh"


@pytest.mark.parametrize("via", ["direct", "gateway"])
def test_contract_script(system: Stack, client: httpx.Client, via: str) -> None:
    system.reset_data()

    def url(service: str, path: str) -> str:
        return system.url("gateway" if via == "gateway" else service, path)

    def post(service: str, path: str, body: str) -> httpx.Response:
        return client.post(url(service, path), content=body, headers={"Content-Type": "application/json"})

    john = post("users", "/v1/register/", '{"email":"j@vv.cc","first_name":"John","last_name":"Doe","active":"False","password":"x" }')
    jane = post("users", "/v1/register/", '{"email":"qqj@vv.cc","first_name":"Jane","last_name":"Smith","active":"True","password":"x" }')
    assert john.status_code == 201, john.text
    assert jane.status_code == 201, jane.text
    assert john.json()["id"] == 1
    assert jane.json()["id"] == 2
    assert john.json()["active"] is False
    assert jane.json()["active"] is True
    for answer in (john, jane):
        assert answer.json()["registration_status"] == "completed"
        assert "password" not in answer.text
        assert "argon2" not in answer.text

    user1 = client.get(url("users", "/v1/users/1"))
    assert user1.status_code == 200
    assert user1.json() | {"saga": None} == john.json() | {"saga": None}
    assert client.get(url("users", "/v1/users/2")).json()["email"] == "qqj@vv.cc"
    missing = client.get(url("users", "/v1/users/3"))
    assert missing.status_code == 404
    assert missing.json() == {"detail": "user not found"}

    p1 = post("profile", "/v1/profile/add/", '{"user_id": 1, "account_type":0, "iban":"XX1111111111111111111111"}')
    p2 = post("profile", "/v1/profile/add/", '{"user_id": 2, "account_type":7, "iban":"YY2222222222222222222222"}')
    p3 = post("profile", "/v1/profile/add/", '{"user_id": 3, "account_type":8, "iban":"YX2222222222222222222222"}')
    assert p1.status_code == 201, p1.text
    assert p2.status_code == 201, p2.text
    assert p3.status_code == 404
    assert p3.json() == {"detail": "user not found"}

    profile1 = client.get(url("profile", "/v1/profile/1")).json()
    assert (profile1["user_id"], profile1["account_type"], profile1["iban"]) == (1, 0, "XX1111111111111111111111")
    profile2 = client.get(url("profile", "/v1/profile/2")).json()
    assert (profile2["user_id"], profile2["account_type"], profile2["iban"]) == (2, 7, "YY2222222222222222222222")
    assert profile2["first_name"] == "Jane"

    s1 = post("profile", "/v1/subscription/add/", '{"user_id":1}')
    s2 = post("profile", "/v1/subscription/add/", '{"user_id":2}')
    assert (s1.status_code, s2.status_code) == (201, 201)
    assert client.get(url("profile", "/v1/subscription/1")).json()["user_id"] == 1
    assert client.get(url("profile", "/v1/subscription/2")).json()["user_id"] == 2
    assert client.get(url("profile", "/v1/profile/1")).json()["subscribed"] is True

    sent = post("emails", "/v1/emails/send/", '{"user_id":2, "subject":"SSSSSSS", "body":"Hi there!"}')
    assert sent.status_code == 202, sent.text
    assert sent.json()["to_address"] == "qqj@vv.cc"

    # The mail arrives: the message's state says so, and so does the SMTP server's inbox.
    message_url = url("emails", f"/v1/emails/{sent.json()['id']}")
    wait_until(lambda: client.get(message_url).json()["status"] == "sent", what="the message to be sent")
    hi = [m for m in system.mail_to("qqj@vv.cc") if m["Content"]["Headers"]["Subject"] == ["SSSSSSS"]]
    assert hi
    assert "Hi there!" in hi[0]["Content"]["Body"]
    welcome = {m["Raw"]["To"][0] for m in system.mail() if m["Content"]["Headers"]["Subject"] == ["Welcome aboard"]}
    assert {"j@vv.cc", "qqj@vv.cc"} <= welcome


def test_the_gateway_answers_unknown_paths_in_json_and_tags_requests(system: Stack, client: httpx.Client) -> None:
    response = client.get(system.url("gateway", "/nowhere"))
    assert response.status_code == 404
    assert response.json() == {"detail": "not found"}
    assert response.headers["X-Request-ID"]
    passed = client.get(system.url("gateway", "/v1/users/1"), headers={"X-Request-ID": "trace-me"})
    assert passed.headers["X-Request-ID"] == "trace-me"


def test_flower_answers(system: Stack, client: httpx.Client) -> None:
    assert client.get(f"http://127.0.0.1:{system.config.flower_port}/flower/").status_code == 200
    assert client.get(system.url("gateway", "/flower/")).status_code == 200


def _fresh(system: Stack, client: httpx.Client) -> None:
    """Empty tables (ids restart at 1), broker and inbox: the smoke script asserts on a fresh stack."""
    system.reset_data()
    client.delete(f"http://127.0.0.1:{system.config.mail_http_port}/api/v1/messages").raise_for_status()


def _smoke(system: Stack, mode: str) -> subprocess.CompletedProcess[str]:
    mail = f"http://127.0.0.1:{system.config.mail_http_port}"
    urls = {
        "dev": {f"SMOKE_{s.upper()}_URL": system.url(s, "") for s in ("users", "profile", "emails")} | {"SMOKE_MAIL_URL": mail},
        "prod": {"SMOKE_GATEWAY_URL": system.url("gateway", ""), "SMOKE_MAIL_URL": mail},
    }[mode]
    env = {**os.environ, **urls, "SMOKE_TIMEOUT": "60"}
    return subprocess.run(["bash", str(SMOKE), mode], env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("mode", ["dev", "prod"])
def test_the_smoke_script_passes_on_a_fresh_stack(system: Stack, client: httpx.Client, mode: str) -> None:
    _fresh(system, client)
    run = _smoke(system, mode)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"[smoke] PASSED ({mode})" in run.stdout
    assert "the inbox holds both welcome mails" in run.stdout


def test_the_smoke_script_refuses_a_used_stack_before_any_call(system: Stack, client: httpx.Client) -> None:
    _fresh(system, client)
    assert _smoke(system, "dev").returncode == 0
    users = system.query("users", "SELECT count(*) FROM user_account")

    again = _smoke(system, "dev")

    assert again.returncode == 2
    assert "NOT A FRESH STACK" in again.stderr
    assert system.query("users", "SELECT count(*) FROM user_account") == users
