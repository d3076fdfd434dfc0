"""The account sagas' shape: steps in order on their owners' queues, compensations in reverse."""

import pytest
from celery import Celery

from saga import DELETION, PURGE, RESTORE, DeletionStep, RestoreStep, TaskName, create_celery_app, queue_of

SAGA_ID = "5b0c1f1e-0000-4000-8000-000000000002"
PAYLOAD = {"user_id": 7, "email": "a@example.com", "first_name": "A", "last_name": "B", "restore_until": "2030-01-01T00:00:00Z"}


@pytest.fixture
def app() -> Celery:
    return create_celery_app("test", "redis://127.0.0.1:1/0")


def _names(signature: object) -> list[str]:
    return [task["task"] for task in signature.tasks]  # type: ignore[attr-defined]


def test_the_deletion_saga_sends_the_goodbye_mail_first_and_ends_at_its_pivot(app: Celery) -> None:
    saga = DELETION.saga(app, SAGA_ID, PAYLOAD)
    assert _names(saga) == [TaskName.SEND_GOODBYE_EMAIL, TaskName.ARCHIVE_PROFILE, TaskName.ERASE_ADDRESS, TaskName.COMPLETE_DELETION]
    assert [task.options["queue"] for task in saga.tasks] == ["emails", "profile", "emails", "users"]
    assert [task.options["task_id"] for task in saga.tasks] == [f"{SAGA_ID}:{step}" for step in DeletionStep]
    assert [task.args for task in saga.tasks] == [(SAGA_ID, PAYLOAD)] * 3 + [(SAGA_ID,)]
    assert DELETION.pivot == DeletionStep.COMPLETE_DELETION


def test_the_restore_saga_recreates_what_the_deletion_removed(app: Celery) -> None:
    saga = RESTORE.saga(app, SAGA_ID, PAYLOAD)
    assert _names(saga) == [TaskName.RESTORE_PROFILE, TaskName.RECALL_ADDRESS, TaskName.COMPLETE_RESTORE]
    assert [task.options["queue"] for task in saga.tasks] == ["profile", "emails", "users"]
    assert RESTORE.pivot == RestoreStep.COMPLETE_RESTORE


@pytest.mark.parametrize(
    ("failed_step", "expected"),
    [
        # The goodbye mail cannot be unsent: a failure anywhere leaves it as it is.
        (DeletionStep.SEND_GOODBYE_EMAIL, [TaskName.BEGIN_COMPENSATION, TaskName.FAIL_SAGA]),
        (DeletionStep.ARCHIVE_PROFILE, [TaskName.BEGIN_COMPENSATION, TaskName.FAIL_SAGA]),
        (DeletionStep.ERASE_ADDRESS, [TaskName.BEGIN_COMPENSATION, TaskName.UNDO_ARCHIVE_PROFILE, TaskName.FAIL_SAGA]),
        (
            DeletionStep.COMPLETE_DELETION,
            [TaskName.BEGIN_COMPENSATION, TaskName.UNDO_ERASE_ADDRESS, TaskName.UNDO_ARCHIVE_PROFILE, TaskName.FAIL_SAGA],
        ),
    ],
)
def test_deletion_compensations_undo_only_what_ran_in_reverse_order(app: Celery, failed_step: str, expected: list[str]) -> None:
    chain = DELETION.compensation_chain(app, SAGA_ID, PAYLOAD, failed_step)
    assert _names(chain) == expected
    assert all(task.immutable for task in chain.tasks)
    assert [task.options["queue"] for task in chain.tasks] == [queue_of(name).value for name in expected]


@pytest.mark.parametrize(
    ("failed_step", "expected"),
    [
        (RestoreStep.RESTORE_PROFILE, [TaskName.BEGIN_COMPENSATION, TaskName.FAIL_SAGA]),
        (RestoreStep.RECALL_ADDRESS, [TaskName.BEGIN_COMPENSATION, TaskName.UNDO_RESTORE_PROFILE, TaskName.FAIL_SAGA]),
        (
            RestoreStep.COMPLETE_RESTORE,
            [TaskName.BEGIN_COMPENSATION, TaskName.UNDO_RECALL_ADDRESS, TaskName.UNDO_RESTORE_PROFILE, TaskName.FAIL_SAGA],
        ),
    ],
)
def test_restore_compensations_undo_only_what_ran_in_reverse_order(app: Celery, failed_step: str, expected: list[str]) -> None:
    assert _names(RESTORE.compensation_chain(app, SAGA_ID, PAYLOAD, failed_step)) == expected


def test_every_deletion_and_restore_step_carries_its_compensation_chain(app: Celery) -> None:
    for definition in (DELETION, RESTORE):
        saga = definition.saga(app, SAGA_ID, PAYLOAD)
        for task, step in zip(saga.tasks, definition.step_names, strict=True):
            [errback] = task.options["link_error"]
            assert [t["task"] for t in errback["kwargs"]["tasks"]] == _names(definition.compensation_chain(app, SAGA_ID, PAYLOAD, step))


def test_the_purge_saga_only_retries(app: Celery) -> None:
    saga = PURGE.saga(app, SAGA_ID, {"user_id": 7})
    assert _names(saga) == [TaskName.PURGE_PROFILE, TaskName.PURGE_ADDRESS, TaskName.PURGE_ACCOUNT]
    assert not any(task.options.get("link_error") for task in saga.tasks)
    with pytest.raises(ValueError, match="no compensations"):
        PURGE.compensation_chain(app, SAGA_ID, {"user_id": 7}, PURGE.pivot)
