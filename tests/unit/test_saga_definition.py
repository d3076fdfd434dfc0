"""The saga's shape: steps in order, each on its owner's queue, compensations in reverse."""

import pytest
from celery import Celery

from saga import REGISTRATION, Queue, RegistrationPayload, RegistrationStep, TaskName, create_celery_app, queue_of

SAGA_ID = "5b0c1f1e-0000-4000-8000-000000000001"
PAYLOAD = RegistrationPayload(user_id=7, email="a@example.com", first_name="A", last_name="B").model_dump()


@pytest.fixture
def app() -> Celery:
    return create_celery_app("test", "redis://127.0.0.1:1/0")


def _names(signature: object) -> list[str]:
    return [task["task"] for task in signature.tasks]  # type: ignore[attr-defined]


def test_steps_run_in_order_on_their_owners_queues(app: Celery) -> None:
    saga = REGISTRATION.saga(app, SAGA_ID, PAYLOAD)
    assert _names(saga) == [
        TaskName.CREATE_PROFILE,
        TaskName.RECORD_ADDRESS,
        TaskName.COMPLETE_REGISTRATION,
        TaskName.SEND_WELCOME_EMAIL,
    ]
    assert [task.options["queue"] for task in saga.tasks] == ["profile", "emails", "users", "emails"]


def test_step_task_ids_are_deterministic(app: Celery) -> None:
    first, second = REGISTRATION.saga(app, SAGA_ID, PAYLOAD), REGISTRATION.saga(app, SAGA_ID, PAYLOAD)
    ids = [task.options.get("task_id") for task in first.tasks]
    assert ids[:4] == [f"{SAGA_ID}:{step}" for step in RegistrationStep]
    assert ids == [task.options.get("task_id") for task in second.tasks]


def test_every_step_up_to_the_pivot_has_compensations_and_none_after(app: Celery) -> None:
    saga = REGISTRATION.saga(app, SAGA_ID, PAYLOAD)
    errbacks = [task.options.get("link_error") for task in saga.tasks]
    assert all(errbacks[:3])
    assert not any(errbacks[3:])  # a sent mail is never undone


@pytest.mark.parametrize(
    ("failed_step", "expected"),
    [
        (RegistrationStep.CREATE_PROFILE, [TaskName.BEGIN_COMPENSATION, TaskName.FAIL_SAGA]),
        (RegistrationStep.RECORD_ADDRESS, [TaskName.BEGIN_COMPENSATION, TaskName.REMOVE_PROFILE, TaskName.FAIL_SAGA]),
        (
            RegistrationStep.COMPLETE_REGISTRATION,
            [TaskName.BEGIN_COMPENSATION, TaskName.FORGET_ADDRESS, TaskName.REMOVE_PROFILE, TaskName.FAIL_SAGA],
        ),
    ],
)
def test_compensations_undo_only_what_ran_in_reverse_order(app: Celery, failed_step: RegistrationStep, expected: list[str]) -> None:
    chain = REGISTRATION.compensation_chain(app, SAGA_ID, PAYLOAD, failed_step)
    assert _names(chain) == expected
    # Immutable, so Celery does not prepend the failed request; each on its owner's queue.
    assert all(task.immutable for task in chain.tasks)
    assert [task.options["queue"] for task in chain.tasks] == [queue_of(name).value for name in expected]


def test_the_errback_attached_to_a_step_is_its_compensation_chain(app: Celery) -> None:
    saga = REGISTRATION.saga(app, SAGA_ID, PAYLOAD)
    errback = saga.tasks[1].options["link_error"][0]
    assert [task["task"] for task in errback["kwargs"]["tasks"]] == _names(
        REGISTRATION.compensation_chain(app, SAGA_ID, PAYLOAD, RegistrationStep.RECORD_ADDRESS)
    )


def test_queues_follow_the_task_name_prefix() -> None:
    assert {queue_of(name) for name in TaskName} == set(Queue)


def test_app_is_configured_for_at_least_once_delivery(app: Celery) -> None:
    assert app.conf.task_acks_late
    assert app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1
    assert not app.conf.task_always_eager
