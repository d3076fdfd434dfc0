import uuid

import pytest
from fastapi.testclient import TestClient

from profile_svc.tasks import create_profile, remove_profile
from saga import SagaAborted
from tests.stack import Stack

PAYLOAD = {"user_id": 1, "email": "a@example.com", "first_name": "Ann", "last_name": "Lee"}


def test_create_profile_delivered_twice_creates_one_profile(profile: TestClient, clean: Stack) -> None:
    saga_id = str(uuid.uuid4())
    create_profile.run(saga_id, PAYLOAD)
    create_profile.run(saga_id, PAYLOAD)
    assert clean.query("profile", "SELECT count(*) FROM profile") == [(1,)]
    assert profile.get("/v1/profile/1").json()["first_name"] == "Ann"


def test_a_compensated_profile_is_not_brought_back_by_a_late_step(profile: TestClient, clean: Stack) -> None:
    saga_id = str(uuid.uuid4())
    create_profile.run(saga_id, PAYLOAD)
    remove_profile.run(saga_id, 1)
    remove_profile.run(saga_id, 1)  # compensations are idempotent too
    with pytest.raises(SagaAborted):
        create_profile.run(saga_id, PAYLOAD)
    assert profile.get("/v1/profile/1").status_code == 404


def test_compensating_a_step_that_never_ran_is_harmless(clean: Stack) -> None:
    remove_profile.run(str(uuid.uuid4()), 1)
    assert clean.query("profile", "SELECT count(*) FROM profile") == [(0,)]


def test_profiles_and_subscriptions(profile: TestClient) -> None:
    create_profile.run(str(uuid.uuid4()), PAYLOAD)
    added = profile.post("/v1/profile/add/", json={"user_id": 1, "account_type": 3, "iban": "de89370400440532013000"})
    assert added.status_code == 201
    assert (added.json()["account_type"], added.json()["iban"]) == (3, "DE89370400440532013000")
    assert profile.get("/v1/subscription/1").json() == {"detail": "subscription not found"}
    assert profile.post("/v1/subscription/add", json={"user_id": 1}).status_code == 201
    assert profile.post("/v1/subscription/add/", json={"user_id": 1}).status_code == 409
    assert profile.get("/v1/profile/1/").json()["subscribed"] is True


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/profile/add/", {"user_id": 9, "account_type": 0, "iban": "XX1111"}, 404),
        ("/v1/profile/add/", {"user_id": 1, "account_type": -1, "iban": "XX1111"}, 422),
        ("/v1/profile/add/", {"user_id": 1, "account_type": 0, "iban": "not an iban"}, 422),
        ("/v1/profile/add/", {"user_id": "one", "account_type": 0, "iban": "XX1111"}, 422),
        ("/v1/profile/add/", {"user_id": 1, "account_type": False, "iban": "XX1111"}, 422),  # found by schemathesis
        ("/v1/subscription/add/", {"user_id": True}, 422),
        ("/v1/subscription/add/", {"user_id": 9}, 404),
        ("/v1/subscription/add/", {}, 422),
    ],
)
def test_bad_requests_get_json_errors(profile: TestClient, path: str, body: dict, status: int) -> None:
    response = profile.post(path, json=body)
    assert response.status_code == status
    assert "detail" in response.json()


def test_unknown_users_are_404(profile: TestClient) -> None:
    assert profile.get("/v1/profile/3").json() == {"detail": "user not found"}
    assert profile.get("/v1/subscription/3").json() == {"detail": "user not found"}
    assert profile.get("/v1/profile/99999999999").status_code == 422


def test_a_wrong_method_on_a_known_path_is_405(profile: TestClient) -> None:
    # Found by schemathesis: GET /v1/profile/add/ used to be read as the profile of user "add".
    assert profile.get("/v1/profile/add/").status_code == 405
    assert profile.get("/v1/subscription/add").status_code == 405
