"""The operators' saga API in process, against the real database: the credential, search, history, actions.

No workers run here: sagas are moved by the engine's own functions, as the users worker would.
"""

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from saga import RegistrationStep, SagaKind
from tests.stack import Stack
from tests.utils.accounts import bearer, login, registered
from users_svc import engine, operators, watchdog
from users_svc.config import get_settings
from users_svc.db import make_sessionmaker

OPERATOR = "op@example.com"


@pytest.fixture
def sessions(clean: Stack) -> Iterator[sessionmaker[Session]]:
    make_session = make_sessionmaker(get_settings().database_url)
    yield make_session
    make_session.kw["bind"].dispose()


@pytest.fixture
def operator(users: TestClient, clean: Stack) -> dict[str, str]:
    registered(users, clean, OPERATOR)
    assert operators.main(["grant", OPERATOR]) == 0
    return bearer(login(users, OPERATOR)["access_token"])


def _saga_of(stack: Stack, user_id: int) -> uuid.UUID:
    rows = stack.query("users", "SELECT id FROM saga WHERE user_id = %s", user_id)
    return uuid.UUID(str(rows[0][0]))


def _signed_up(users: TestClient, stack: Stack, email: str) -> uuid.UUID:
    return _saga_of(stack, registered(users, stack, email, status="pending"))


def _events(users: TestClient, operator: dict[str, str], saga_id: uuid.UUID) -> list[dict]:
    response = users.get(f"/v1/sagas/{saga_id}/events", headers=operator)
    assert response.status_code == 200, response.text
    items: list[dict] = response.json()["items"]
    return items


def test_the_operator_endpoints_want_an_operators_token(users: TestClient, clean: Stack, operator: dict[str, str]) -> None:
    saga_id = _signed_up(users, clean, "ann@example.com")
    clean.query("users", "UPDATE user_account SET registration_status = 'completed' WHERE email = 'ann@example.com'")
    someone = bearer(login(users, "ann@example.com")["access_token"])
    calls = [
        ("GET", "/v1/sagas", None),
        ("GET", f"/v1/sagas/{saga_id}/events", None),
        ("POST", f"/v1/sagas/{saga_id}/redrive", None),
        ("POST", f"/v1/sagas/{saga_id}/attention", {"note": "x"}),
        ("DELETE", f"/v1/sagas/{saga_id}/attention", None),
    ]
    for method, path, body in calls:
        anonymous = users.request(method, path, json=body)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.json() == {"detail": "not authenticated"}
        assert users.request(method, path, json=body, headers=bearer("not-a-token")).status_code == 401
        refused = users.request(method, path, json=body, headers=someone)
        assert (refused.status_code, refused.json()) == (403, {"detail": "the operator role is required"}), (method, path)
    assert users.get("/v1/sagas", headers=operator).status_code == 200
    spec = users.get("/openapi.json").json()["paths"]
    for path, method in (("/v1/sagas", "get"), ("/v1/sagas/{saga_id}/events", "get"), ("/v1/sagas/{saga_id}/attention", "delete")):
        assert spec[path][method]["security"] == [{"HTTPBearer": []}]
    # The public read of one saga stays public.
    assert users.get(f"/v1/sagas/{saga_id}").status_code == 200

    assert operators.main(["revoke", OPERATOR]) == 0
    assert users.get("/v1/sagas", headers=operator).status_code == 401  # its sessions ended at once
    assert operators.main(["grant", "nobody@example.com"]) == 1


def test_search_filters_pages_and_counts(
    users: TestClient, clean: Stack, operator: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    ids = [_signed_up(users, clean, f"user{i}@example.com") for i in range(5)]
    with sessions.begin() as session:
        engine.pass_pivot(session, ids[0], SagaKind.REGISTRATION)
        engine.begin_compensation(session, ids[1], RegistrationStep.RECORD_ADDRESS)
        engine.record_step_event(session, ids[1], RegistrationStep.RECORD_ADDRESS, "failed", "InjectedFault: boom", 1)
        engine.begin_compensation(session, ids[2], RegistrationStep.CREATE_PROFILE)
    with sessions.begin() as session:
        engine.fail_saga(session, ids[2])
    clean.query("users", "UPDATE saga SET progressed_at = now() - interval '1 hour' WHERE id = %s", ids[3])

    everything = users.get("/v1/sagas", headers=operator).json()
    # Newest first: the operator's own registration, then the five in reverse.
    assert [item["id"] for item in everything["items"][:5]] == [str(i) for i in reversed(ids)]
    assert everything["counts"] == {"running": 3, "compensating": 1, "completed": 1, "failed": 1, "attention": 0}
    assert everything["next_cursor"] is None

    failed = users.get("/v1/sagas", params={"status": "compensating"}, headers=operator).json()
    assert [(i["id"], i["failed_step"], i["error"]) for i in failed["items"]] == [(str(ids[1]), "record_address", "InjectedFault: boom")]
    assert failed["counts"] == everything["counts"]  # counts ignore the status filter

    by_email = users.get("/v1/sagas", params={"email": "USER2@Example.com"}, headers=operator).json()
    assert [(i["id"], i["email"], i["status"]) for i in by_email["items"]] == [(str(ids[2]), "user2@example.com", "failed")]
    assert by_email["counts"] == {"running": 0, "compensating": 0, "completed": 0, "failed": 1, "attention": 0}

    stuck = users.get("/v1/sagas", params={"stuck": "true"}, headers=operator).json()
    assert [(i["id"], i["stuck"]) for i in stuck["items"]] == [(str(ids[3]), True)]
    assert users.get("/v1/sagas", params={"kind": "deletion"}, headers=operator).json()["items"] == []
    user_id = everything["items"][0]["user_id"]
    assert [i["id"] for i in users.get("/v1/sagas", params={"user_id": user_id}, headers=operator).json()["items"]] == [str(ids[4])]
    since = everything["items"][2]["created_at"]  # ids[2]'s
    newer = users.get("/v1/sagas", params={"created_since": since, "kind": "registration"}, headers=operator).json()
    assert {i["id"] for i in newer["items"]} >= {str(ids[2]), str(ids[3]), str(ids[4])}
    assert users.get("/v1/sagas", params={"created_until": "2000-01-01T00:00:00Z"}, headers=operator).json()["items"] == []

    # Keyset pages of two: every saga once, in the same order, and the last page says so.
    seen: list[str] = []
    cursor = None
    while True:
        page = users.get("/v1/sagas", params={"limit": 2, **({"cursor": cursor} if cursor else {})}, headers=operator).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [item["id"] for item in everything["items"]]

    for bad in ({"limit": 0}, {"limit": 201}, {"status": "lost"}, {"kind": "x"}, {"cursor": "!!"}, {"created_since": "yesterday"}):
        answer = users.get("/v1/sagas", params=bad, headers=operator)
        assert answer.status_code == 422, (bad, answer.text)
        assert "detail" in answer.json()


def test_the_history_of_a_failed_saga(users: TestClient, clean: Stack, operator: dict[str, str], sessions: sessionmaker[Session]) -> None:
    saga_id = _signed_up(users, clean, "ann@example.com")
    with sessions.begin() as session:
        engine.record_step_event(session, saga_id, RegistrationStep.CREATE_PROFILE, "done", None, 1, engine.now(), engine.now())
        engine.record_step_event(
            session, saga_id, RegistrationStep.RECORD_ADDRESS, "retrying", "OperationalError: gone", 1, engine.now(), engine.now()
        )
        engine.record_step_event(
            session, saga_id, RegistrationStep.RECORD_ADDRESS, "failed", "InjectedFault: boom", 2, engine.now(), engine.now()
        )
        engine.begin_compensation(session, saga_id, RegistrationStep.RECORD_ADDRESS)
        engine.record_step_event(session, saga_id, RegistrationStep.CREATE_PROFILE, "compensated", None, 1, engine.now(), engine.now())
        engine.fail_saga(session, saga_id)
    # The same messages delivered again: nothing written twice.
    for _ in range(2):
        with sessions.begin() as session:
            engine.record_step_event(
                session, saga_id, RegistrationStep.RECORD_ADDRESS, "failed", "InjectedFault: boom", 2, engine.now(), engine.now()
            )
            engine.record_step_event(session, saga_id, RegistrationStep.CREATE_PROFILE, "compensated", None, 1, engine.now(), engine.now())
            engine.begin_compensation(session, saga_id, RegistrationStep.RECORD_ADDRESS)
            engine.fail_saga(session, saga_id)

    events = _events(users, operator, saga_id)
    assert [(e["type"], e["step"], e["attempt"]) for e in events] == [
        ("saga_started", None, None),
        ("step_queued", "create_profile", None),  # the API published the chain
        ("step_started", "create_profile", 1),
        ("step_done", "create_profile", 1),
        ("step_queued", "record_address", None),
        ("step_started", "record_address", 1),
        ("step_retried", "record_address", 1),
        ("step_started", "record_address", 2),
        ("step_failed", "record_address", 2),
        ("compensation_queued", "create_profile", None),
        ("compensation_started", "create_profile", 1),
        ("compensation_done", "create_profile", 1),
        ("saga_failed", "record_address", None),
    ]
    errors = {(e["type"], e["attempt"]): e["error"] for e in events if e["error"]}
    assert errors == {("step_retried", 1): "OperationalError: gone", ("step_failed", 2): "InjectedFault: boom"}
    history = users.get(f"/v1/sagas/{saga_id}/events", headers=operator).json()
    assert history["saga"]["status"] == "failed"
    assert history["saga"]["error"] == "InjectedFault: boom"
    assert [(s["step"], s["status"], s["attempts"]) for s in history["steps"]] == [
        ("create_profile", "compensated", 1),
        ("record_address", "failed", 2),
        ("complete_registration", "skipped", 0),
        ("send_welcome_email", "skipped", 0),
    ]
    assert users.get(f"/v1/sagas/{uuid.uuid4()}/events", headers=operator).status_code == 404
    assert users.get("/v1/sagas/not-a-uuid/events", headers=operator).status_code == 422


def test_the_history_of_a_completed_saga_from_old_and_new_messages(
    users: TestClient, clean: Stack, operator: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    saga_id = _signed_up(users, clean, "ann@example.com")
    with sessions.begin() as session:
        engine.pass_pivot(session, saga_id, SagaKind.REGISTRATION, attempt=1, started_at=engine.now())
        # The welcome step's "done", as the chain of a release before the history sent it, then as now.
        engine.record_step_event(session, saga_id, RegistrationStep.SEND_WELCOME_EMAIL, "done", None, 0)
        engine.record_step_event(session, saga_id, RegistrationStep.SEND_WELCOME_EMAIL, "done", None, 1, engine.now(), engine.now())
    types = [(e["type"], e["step"]) for e in _events(users, operator, saga_id)]
    assert types == [
        ("saga_started", None),
        ("step_queued", "create_profile"),
        ("step_started", "complete_registration"),
        ("step_done", "complete_registration"),
        ("pivot_passed", "complete_registration"),
        ("step_queued", "send_welcome_email"),
        ("step_done", "send_welcome_email"),  # once, from whichever message came first
        ("saga_completed", None),
        ("step_started", "send_welcome_email"),  # only the new message knows when it started
    ]
    assert types.count(("step_done", "send_welcome_email")) == 1


def test_operator_actions_are_recorded_with_their_actor(
    users: TestClient, clean: Stack, operator: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    saga_id = _signed_up(users, clean, "ann@example.com")
    redriven = users.post(f"/v1/sagas/{saga_id}/redrive", headers=operator)
    assert redriven.status_code == 202, redriven.text
    assert redriven.json()["redrive_count"] == 1
    # Published at once: no message left for the relay.
    assert clean.query("users", "SELECT count(*) FROM outbox_message WHERE saga_id = %s AND published_at IS NULL", saga_id) == [(0,)]

    marked = users.post(f"/v1/sagas/{saga_id}/attention", json={"note": "profile service refuses"}, headers=operator)
    assert marked.status_code == 200, marked.text
    assert (marked.json()["needs_attention"], marked.json()["attention_note"]) == (True, "profile service refuses")
    listed = users.get("/v1/sagas", params={"attention": "true"}, headers=operator).json()
    assert [i["id"] for i in listed["items"]] == [str(saga_id)]
    assert listed["counts"]["attention"] == 1
    cleared = users.delete(f"/v1/sagas/{saga_id}/attention", headers=operator)
    assert cleared.status_code == 200
    assert cleared.json()["needs_attention"] is False
    assert users.post(f"/v1/sagas/{saga_id}/attention", json={}, headers=operator).json()["needs_attention"] is True

    actions = [(e["type"], e["actor"], e["detail"]) for e in _events(users, operator, saga_id) if e["actor"]]
    assert actions == [
        ("redriven", OPERATOR, "running: publishes its steps"),
        ("attention_marked", OPERATOR, "profile service refuses"),
        ("attention_cleared", OPERATOR, None),
        ("attention_marked", OPERATOR, None),
    ]

    with sessions.begin() as session:
        engine.begin_compensation(session, saga_id, RegistrationStep.CREATE_PROFILE)
        engine.fail_saga(session, saga_id)
    finished = users.post(f"/v1/sagas/{saga_id}/redrive", headers=operator)
    assert (finished.status_code, finished.json()) == (409, {"detail": "the saga is over (failed): nothing to re-drive"})
    assert users.post(f"/v1/sagas/{uuid.uuid4()}/redrive", headers=operator).status_code == 404


def test_the_watchdog_marks_a_compensation_that_keeps_failing(
    users: TestClient, clean: Stack, operator: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    saga_id = _signed_up(users, clean, "ann@example.com")
    with sessions.begin() as session:
        engine.begin_compensation(session, saga_id, RegistrationStep.RECORD_ADDRESS)
    clean.query("users", "UPDATE outbox_message SET published_at = now()")
    for count in range(1, 4):
        clean.query("users", "UPDATE saga SET progressed_at = now() - interval '1 day' WHERE id = %s", saga_id)
        assert watchdog.redrive_stale(sessions, stale_after_seconds=1, attention_after=3) == 1
        clean.query("users", "UPDATE outbox_message SET published_at = now()")
        summary = users.get(f"/v1/sagas/{saga_id}/events", headers=operator).json()["saga"]
        assert (summary["redrive_count"], summary["needs_attention"]) == (count, count >= 3)
    events = [(e["type"], e["actor"], e["attempt"]) for e in _events(users, operator, saga_id) if e["actor"]]
    assert events == [
        ("redriven", "watchdog", 1),
        ("redriven", "watchdog", 2),
        ("redriven", "watchdog", 3),
        ("attention_marked", "watchdog", 1),
    ]
