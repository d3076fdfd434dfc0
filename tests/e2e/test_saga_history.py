"""The saga history and the operators' API on the running system: real workers write every event.

Failpoints (saga/_failpoints.py) make one registration fail in a known step; the history then
shows each step's runs, the failure with its error, and the compensation, through the gateway too.
"""

from collections.abc import Callable

import httpx
import pytest

from saga import RegistrationStep
from tests.stack import Stack, wait_until
from tests.utils.registration import register, unique_email, wait_for_saga
from users_svc import operators


@pytest.fixture(scope="module")
def operator(system: Stack) -> dict[str, str]:
    email = unique_email("operator")
    with httpx.Client(timeout=30) as client:
        accepted = register(client, system, email)
        wait_for_saga(client, system, accepted.json()["saga"]["id"], "completed")
        assert operators.main(["grant", email]) == 0
        body = {"email": email, "password": "correct horse"}
        token = client.post(system.url("users", "/v1/auth/login"), json=body).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def _history_with(client: httpx.Client, system: Stack, operator: dict[str, str], saga_id: str, *wanted: tuple[str, str | None]) -> dict:
    """The saga's history once it holds every wanted (type, step): steps report a moment after they run."""

    def complete() -> dict | None:
        history: dict = client.get(system.url("gateway", f"/v1/sagas/{saga_id}/events"), headers=operator).json()
        present = {(event["type"], event["step"]) for event in history["items"]}
        return history if set(wanted) <= present else None

    found: dict = wait_until(complete, what=f"the history of {saga_id} to hold {wanted}")  # type: ignore[assignment]
    return found


def _kinds(history: dict, keep: Callable[[dict], bool] = lambda _: True) -> list[tuple[str, str | None]]:
    return [(event["type"], event["step"]) for event in history["items"] if keep(event)]


def test_the_history_of_a_saga_that_failed_in_a_known_step(system: Stack, client: httpx.Client, operator: dict[str, str]) -> None:
    email = unique_email(f"fail-{RegistrationStep.RECORD_ADDRESS}")
    saga_id = register(client, system, email).json()["saga"]["id"]
    wait_for_saga(client, system, saga_id, "failed")
    expected = [
        ("saga_started", None),
        ("step_queued", "create_profile"),
        ("step_started", "create_profile"),
        ("step_done", "create_profile"),
        ("step_queued", "record_address"),
        ("step_started", "record_address"),
        ("step_failed", "record_address"),
        ("compensation_queued", "create_profile"),
        ("compensation_started", "create_profile"),
        ("compensation_done", "create_profile"),
        ("saga_failed", "record_address"),
    ]
    history = _history_with(client, system, operator, saga_id, *expected)
    # Each worker's own clock stamps its runs: compare the set, and the order where one process wrote both.
    assert sorted(_kinds(history)) == sorted(expected)
    failed = next(event for event in history["items"] if event["type"] == "step_failed")
    assert (failed["attempt"], failed["error"]) == (1, "InjectedFault: failpoint fail-record_address")
    assert history["saga"]["status"] == "failed"
    assert history["saga"]["error"] == "InjectedFault: failpoint fail-record_address"
    assert [(step["step"], step["status"]) for step in history["steps"]] == [
        ("create_profile", "compensated"),
        ("record_address", "failed"),
        ("complete_registration", "skipped"),
        ("send_welcome_email", "skipped"),
    ]

    found = client.get(system.url("gateway", "/v1/sagas"), params={"email": email.upper()}, headers=operator).json()
    assert [(item["id"], item["status"], item["failed_step"]) for item in found["items"]] == [(saga_id, "failed", "record_address")]
    assert found["counts"]["failed"] == 1
    over = client.post(system.url("gateway", f"/v1/sagas/{saga_id}/redrive"), headers=operator)
    assert over.status_code == 409


def test_the_history_of_a_completed_saga_and_of_steps_delivered_twice(
    system: Stack, client: httpx.Client, operator: dict[str, str]
) -> None:
    email = unique_email()
    accepted = register(client, system, email)
    saga_id = accepted.json()["saga"]["id"]
    wait_for_saga(client, system, saga_id, "completed")
    steps = list(RegistrationStep)
    expected = [("saga_started", None), ("pivot_passed", "complete_registration"), ("saga_completed", None)]
    expected += [(kind, step) for step in steps for kind in ("step_queued", "step_started", "step_done")]
    history = _history_with(client, system, operator, saga_id, *expected)
    assert sorted(_kinds(history)) == sorted(expected)
    assert all(event["attempt"] == 1 for event in history["items"] if event["type"] in ("step_started", "step_done"))

    # (Steps delivered twice write nothing twice: tests/e2e/test_failures.py.)


def test_an_operator_re_drives_a_running_saga(system: Stack, client: httpx.Client, operator: dict[str, str]) -> None:
    email = unique_email(f"slow-{RegistrationStep.CREATE_PROFILE}")  # its first step stalls a while
    saga_id = register(client, system, email).json()["saga"]["id"]
    redriven = client.post(system.url("gateway", f"/v1/sagas/{saga_id}/redrive"), headers=operator)
    assert redriven.status_code == 202, redriven.text
    assert redriven.json()["redrive_count"] >= 1
    wait_for_saga(client, system, saga_id, "completed")
    history = client.get(system.url("users", f"/v1/sagas/{saga_id}/events"), headers=operator).json()
    by_operator = [event for event in history["items"] if event["type"] == "redriven" and event["actor"] not in (None, "watchdog")]
    assert len(by_operator) == 1
    assert by_operator[0]["actor"].startswith("operator-")
    # The profile was made once, whoever delivered the step how often.
    assert system.query("profile", "SELECT count(*) FROM profile WHERE user_id = %s", redriven.json()["user_id"]) == [(1,)]
