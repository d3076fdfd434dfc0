"""Accounts end to end, through the nginx gateway: tokens, the current user, deletion, restore, purge.

Every process of the Procfile runs for real; the account sagas cross the three workers' queues,
and the goodbye mail arrives at the SMTP sink.
"""

import httpx
import pytest

from saga import DeletionStep, RestoreStep
from tests.stack import Stack, wait_until
from tests.utils.registration import register, unique_email

PASSWORD = "correct horse"  # what register() signs up with
GOODBYE = "Your account is being deleted"


def _gw(system: Stack, path: str) -> str:
    return system.url("gateway", path)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _signed_up(client: httpx.Client, system: Stack, email: str) -> int:
    """A registered user with account details and a subscription, as the contract's script leaves them."""
    registered = register(client, system, email, via="gateway")
    assert registered.status_code == 201, registered.text
    user_id = registered.json()["id"]
    profile = {"user_id": user_id, "account_type": 7, "iban": "XX1111111111111111111111"}
    assert client.post(_gw(system, "/v1/profile/add/"), json=profile).status_code == 201
    assert client.post(_gw(system, "/v1/subscription/add/"), json={"user_id": user_id}).status_code == 201
    return user_id


def _login(client: httpx.Client, system: Stack, email: str) -> dict:
    response = client.post(_gw(system, "/v1/auth/login"), json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()


def _wait_for(client: httpx.Client, system: Stack, url: str, status: str) -> dict:
    """The saga at ``url`` in ``status``, with the failed step's own report in when it failed."""

    def settled() -> dict | None:
        saga = client.get(_gw(system, url)).json()
        return saga if saga["status"] == status and (status != "failed" or saga["error"]) else None

    return wait_until(settled, timeout=60, what=f"saga {url} to be {status}")  # type: ignore[return-value]


def _steps(saga: dict) -> dict[str, str]:
    return {step["step"]: step["status"] for step in saga["steps"]}


def _goodbye_mails(system: Stack, email: str) -> list[dict]:
    return [m for m in system.mail_to(email) if m["Content"]["Headers"]["Subject"] == [GOODBYE]]  # type: ignore[index]


def _account_is_live(client: httpx.Client, system: Stack, email: str, user_id: int) -> None:
    tokens = _login(client, system, email)
    assert client.get(_gw(system, "/v1/users/me"), headers=_bearer(tokens["access_token"])).json()["account_status"] == "active"
    assert client.get(_gw(system, f"/v1/users/{user_id}")).status_code == 200
    profile = client.get(_gw(system, f"/v1/profile/{user_id}")).json()
    assert (profile["iban"], profile["subscribed"]) == ("XX1111111111111111111111", True)
    sent = client.post(_gw(system, "/v1/emails/send/"), json={"user_id": user_id, "subject": "still here", "body": "b"})
    assert sent.status_code == 202


def test_login_me_refresh_reuse_detection_and_logout(system: Stack, client: httpx.Client) -> None:
    email = unique_email("login")
    user_id = _signed_up(client, system, email)
    tokens = _login(client, system, email.upper())
    assert (tokens["user_id"], tokens["token_type"]) == (user_id, "bearer")

    me = client.get(_gw(system, "/v1/users/me"), headers=_bearer(tokens["access_token"]))
    assert (me.status_code, me.json()["email"]) == (200, email)
    renamed = client.patch(_gw(system, "/v1/users/me"), json={"first_name": "Renamed"}, headers=_bearer(tokens["access_token"]))
    assert renamed.json()["first_name"] == "Renamed"
    assert client.get(_gw(system, "/v1/users/me")).status_code == 401

    rotated = client.post(_gw(system, "/v1/auth/refresh"), json={"refresh_token": tokens["refresh_token"]})
    assert rotated.status_code == 200
    assert client.get(_gw(system, "/v1/users/me"), headers=_bearer(rotated.json()["access_token"])).status_code == 200
    # The same token again within the leeway (a retry): the same pair.
    assert client.post(_gw(system, "/v1/auth/refresh"), json={"refresh_token": tokens["refresh_token"]}).json() == rotated.json()
    moved_on = client.post(_gw(system, "/v1/auth/refresh"), json={"refresh_token": rotated.json()["refresh_token"]}).json()
    # The old refresh token once the session moved on: theft assumed, the whole family revoked.
    assert client.post(_gw(system, "/v1/auth/refresh"), json={"refresh_token": tokens["refresh_token"]}).status_code == 401
    assert client.post(_gw(system, "/v1/auth/refresh"), json={"refresh_token": moved_on["refresh_token"]}).status_code == 401
    assert client.get(_gw(system, "/v1/users/me"), headers=_bearer(moved_on["access_token"])).status_code == 401

    session = _login(client, system, email)
    out = client.post(
        _gw(system, "/v1/auth/logout"), json={"refresh_token": session["refresh_token"]}, headers=_bearer(session["access_token"])
    )
    assert out.status_code == 204
    assert client.get(_gw(system, "/v1/users/me"), headers=_bearer(session["access_token"])).status_code == 401
    assert client.post(_gw(system, "/v1/auth/refresh"), json={"refresh_token": session["refresh_token"]}).status_code == 401

    wrong = client.post(_gw(system, "/v1/auth/login"), json={"email": email, "password": "wrong"})
    unknown = client.post(_gw(system, "/v1/auth/login"), json={"email": unique_email("nobody"), "password": PASSWORD})
    assert (wrong.status_code, wrong.json()) == (unknown.status_code, unknown.json()) == (401, {"detail": "invalid email or password"})


def test_an_account_is_deleted_with_a_goodbye_mail_and_restored(system: Stack, client: httpx.Client) -> None:
    email = unique_email("bye")
    user_id = _signed_up(client, system, email)
    tokens = _login(client, system, email)

    deleted = client.delete(_gw(system, "/v1/users/me"), headers=_bearer(tokens["access_token"]))
    assert deleted.status_code in (200, 202), deleted.text
    saga = _wait_for(client, system, deleted.json()["url"], "completed")
    assert (saga["kind"], saga["user_id"]) == ("deletion", user_id)
    assert _steps(saga) == dict.fromkeys(DeletionStep, "done")

    wait_until(lambda: _goodbye_mails(system, email), what="the goodbye mail to arrive")
    [goodbye] = _goodbye_mails(system, email)
    assert "restore the account until" in goodbye["Content"]["Body"]  # type: ignore[index]
    # The profile, its subscription and the address are gone; the account neither shows nor logs in.
    assert client.get(_gw(system, f"/v1/profile/{user_id}")).status_code == 404
    assert client.get(_gw(system, f"/v1/subscription/{user_id}")).status_code == 404
    assert client.post(_gw(system, "/v1/emails/send/"), json={"user_id": user_id, "subject": "s", "body": "b"}).status_code == 404
    assert client.get(_gw(system, f"/v1/users/{user_id}")).status_code == 404
    assert client.get(_gw(system, "/v1/users/me"), headers=_bearer(tokens["access_token"])).status_code == 401
    login = client.post(_gw(system, "/v1/auth/login"), json={"email": email, "password": PASSWORD})
    assert login.status_code == 403
    assert register(client, system, email, via="gateway").status_code == 409  # held for the restore period

    restored = client.post(_gw(system, "/v1/users/restore"), json={"email": email, "password": PASSWORD})
    assert restored.status_code in (200, 202), restored.text
    saga = _wait_for(client, system, restored.json()["saga"]["url"], "completed")
    assert _steps(saga) == dict.fromkeys(RestoreStep, "done")
    # Everything the deletion removed is back, account details and subscription included.
    _account_is_live(client, system, email, user_id)
    wait_until(lambda: [m for m in system.mail_to(email) if m["Content"]["Headers"]["Subject"] == ["still here"]], what="mail")


@pytest.mark.parametrize(
    ("failed_step", "expected_steps", "profile_ledger", "emails_ledger"),
    [
        (
            DeletionStep.ARCHIVE_PROFILE,
            ["done", "failed", "skipped", "skipped"],
            {},
            {},
        ),
        (
            DeletionStep.ERASE_ADDRESS,
            ["done", "compensated", "failed", "skipped"],
            {"archive_profile": "compensated"},
            {},
        ),
        (
            DeletionStep.COMPLETE_DELETION,
            ["done", "compensated", "compensated", "failed"],
            {"archive_profile": "compensated"},
            {"erase_address": "compensated"},
        ),
    ],
)
def test_a_failing_deletion_step_is_compensated_and_the_account_stays(
    system: Stack,
    client: httpx.Client,
    failed_step: DeletionStep,
    expected_steps: list[str],
    profile_ledger: dict[str, str],
    emails_ledger: dict[str, str],
) -> None:
    email = unique_email(f"fail-{failed_step}")
    user_id = _signed_up(client, system, email)
    tokens = _login(client, system, email)
    deleted = client.delete(_gw(system, "/v1/users/me"), headers=_bearer(tokens["access_token"]))
    assert deleted.status_code == 202, deleted.text
    saga_id = deleted.json()["id"]

    saga = _wait_for(client, system, deleted.json()["url"], "failed")
    assert _steps(saga) == dict(zip(DeletionStep, expected_steps, strict=True))
    assert saga["failed_step"] == failed_step
    assert saga["error"].startswith("InjectedFault")
    ledger = "SELECT step, state FROM saga_step_log WHERE saga_id = %s"
    assert dict(system.query("profile", ledger, saga_id)) == profile_ledger  # type: ignore[arg-type]
    assert dict(system.query("emails", ledger, saga_id)) == emails_ledger  # type: ignore[arg-type]

    # Undone: the account is as it was. The goodbye mail went first and is not unsent.
    _account_is_live(client, system, email, user_id)
    wait_until(lambda: _goodbye_mails(system, email), what="the goodbye mail to arrive")


def test_a_failing_restore_step_is_compensated_and_the_account_stays_deleted(system: Stack, client: httpx.Client) -> None:
    email = unique_email(f"fail-{RestoreStep.COMPLETE_RESTORE}")
    user_id = _signed_up(client, system, email)
    deleted = client.delete(_gw(system, "/v1/users/me"), headers=_bearer(_login(client, system, email)["access_token"]))
    _wait_for(client, system, deleted.json()["url"], "completed")

    restored = client.post(_gw(system, "/v1/users/restore"), json={"email": email, "password": PASSWORD})
    assert restored.status_code == 202
    saga = _wait_for(client, system, restored.json()["saga"]["url"], "failed")
    assert _steps(saga) == {"restore_profile": "compensated", "recall_address": "compensated", "complete_restore": "failed"}
    assert client.get(_gw(system, f"/v1/profile/{user_id}")).status_code == 404
    assert client.post(_gw(system, "/v1/emails/send/"), json={"user_id": user_id, "subject": "s", "body": "b"}).status_code == 404
    assert client.post(_gw(system, "/v1/auth/login"), json={"email": email, "password": PASSWORD}).status_code == 403


def test_after_the_restore_period_the_data_is_purged_and_the_email_free(system: Stack, client: httpx.Client) -> None:
    email = unique_email("purge")
    user_id = _signed_up(client, system, email)
    deleted = client.delete(_gw(system, "/v1/users/me"), headers=_bearer(_login(client, system, email)["access_token"]))
    _wait_for(client, system, deleted.json()["url"], "completed")
    wait_until(lambda: _goodbye_mails(system, email), what="the goodbye mail to arrive")

    # The restore period ends (moved into the past rather than waited for); the relay starts the purge.
    system.query("users", "UPDATE user_account SET purge_after = now() - interval '1 second' WHERE id = %s", user_id)
    purge = wait_until(
        lambda: system.query("users", "SELECT id FROM saga WHERE user_id = %s AND kind = 'purge'", user_id),
        what="the purge saga to start",
    )
    saga = _wait_for(client, system, f"/v1/sagas/{purge[0][0]}", "completed")  # type: ignore[index]
    assert set(_steps(saga).values()) == {"done"}

    assert system.query("profile", "SELECT count(*) FROM profile WHERE user_id = %s", user_id) == [(0,)]
    assert system.query("profile", "SELECT count(*) FROM subscription WHERE user_id = %s", user_id) == [(0,)]
    assert system.query("emails", "SELECT count(*) FROM recipient WHERE user_id = %s", user_id) == [(0,)]
    assert system.query("emails", "SELECT count(*) FROM message WHERE user_id = %s", user_id) == [(0,)]
    [(status, stored_email)] = system.query("users", "SELECT account_status, email FROM user_account WHERE id = %s", user_id)
    assert (status, stored_email) == ("purged", f"purged-{user_id}@purged.invalid")
    assert client.post(_gw(system, "/v1/users/restore"), json={"email": email, "password": PASSWORD}).status_code == 401

    again = register(client, system, email, via="gateway")
    assert again.status_code == 201, again.text
    assert again.json()["id"] != user_id
