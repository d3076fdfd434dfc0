"""A step's success travels in the header of the saga's next step, not in a message of its own."""

from collections.abc import Iterator

import pytest
from celery import Task
from celery._state import _task_stack

from saga import REPORTS_HEADER, RegistrationStep, StepTask, carried_reports, create_celery_app
from saga._task import _pass_reports_on

SAGA = "6f1c1a2e-0000-4000-8000-000000000001"
EARLIER = ["create_profile", "done", None, 1, "2026-12-04T10:00:00+00:00", "2026-12-04T10:00:01+00:00"]


APP = create_celery_app("test", "memory://")


# shared=False: a task is otherwise registered in every Celery app made after it (the tests' too).
@APP.task(name="test.record_address", base=StepTask, step=RegistrationStep.RECORD_ADDRESS, shared=False)
def record_address(saga_id: str, payload: dict[str, object]) -> None: ...


@pytest.fixture
def running_step() -> Iterator[Task]:
    """record_address, running in a worker, with the success of the step before it in its header."""
    _task_stack.push(record_address)
    record_address.push_request(
        id=f"{SAGA}:record_address",
        args=(SAGA, {}),
        kwargs={},
        retries=0,
        called_directly=False,  # as a worker runs it
        headers={REPORTS_HEADER: [EARLIER]},
    )
    yield record_address
    record_address.pop_request()
    _task_stack.pop()


def test_the_next_step_carries_the_earlier_reports_and_this_one(running_step: Task) -> None:
    headers: dict[str, object] = {"id": f"{SAGA}:complete_registration"}
    _pass_reports_on(headers=headers)
    carried = carried_reports(type("Request", (), {"headers": headers})())
    assert [(report.step, report.outcome, report.attempt) for report in carried] == [
        ("create_profile", "done", 1),
        ("record_address", "done", 1),
    ]
    assert carried[0].started_at == EARLIER[4]  # the earlier worker's times travel unchanged
    assert running_step.request.saga_reports_passed_on  # so on_success sends no report of its own


@pytest.mark.parametrize(
    "message_id",
    [
        f"{SAGA}:record_address",  # its own retry
        "0b7e4bd6-5f4c-4a43-9a8f-5f0d3c3ee0a1",  # a compensation or a report: random ids
        "11111111-0000-4000-8000-000000000002:complete_registration",  # another saga's step
    ],
)
def test_nothing_else_carries_them(running_step: Task, message_id: str) -> None:
    headers: dict[str, object] = {"id": message_id}
    _pass_reports_on(headers=headers)
    assert REPORTS_HEADER not in headers
    assert not getattr(running_step.request, "saga_reports_passed_on", False)


def test_outside_a_task_nothing_is_carried() -> None:
    headers: dict[str, object] = {"id": f"{SAGA}:complete_registration"}
    _pass_reports_on(headers=headers)
    assert headers == {"id": f"{SAGA}:complete_registration"}
