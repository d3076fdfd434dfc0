"""The registration saga: its steps, their queues and their compensations.

    create_profile -> record_address -> complete_registration (pivot) -> send_welcome_email
        (profile)        (emails)          (users)                       (emails)

Each step before the pivot, and the pivot itself, carries a ``link_error`` chain that undoes
what the earlier steps did, in reverse order. The chain starts with ``begin_compensation``,
which refuses to compensate a registration that already passed the pivot, and ends with
``fail_registration``, which records the saga's final state. Every compensation is a task
sent to the queue of the service that owns the data (immutable signatures: Celery would
otherwise prepend the failed request to their arguments).
"""

from celery import Celery, chain
from celery.canvas import Signature

from ._names import Step, TaskName, queue_of
from ._payloads import RegistrationPayload

# What undoes each compensatable step, keyed by the step it undoes.
_UNDO = {
    Step.CREATE_PROFILE: TaskName.REMOVE_PROFILE,
    Step.RECORD_ADDRESS: TaskName.FORGET_ADDRESS,
}
_FORWARD = [
    (Step.CREATE_PROFILE, TaskName.CREATE_PROFILE),
    (Step.RECORD_ADDRESS, TaskName.RECORD_ADDRESS),
    (Step.COMPLETE_REGISTRATION, TaskName.COMPLETE_REGISTRATION),
]
PIVOT = Step.COMPLETE_REGISTRATION


def step_task_id(saga_id: str, step: str) -> str:
    """Deterministic task ids: a re-driven saga publishes the same ids again."""
    return f"{saga_id}:{step}"


def _sig(app: Celery, name: str, *args: object, task_id: str | None = None) -> Signature:
    options: dict[str, str] = {"queue": queue_of(name).value}
    if task_id:
        options["task_id"] = task_id
    return app.signature(str(name), args=args, immutable=True, options=options)


def compensation_chain(app: Celery, saga_id: str, user_id: int, failed_step: str) -> Signature:
    """Undo every compensatable step that ran before ``failed_step``, latest first."""
    order = [step for step, _ in _FORWARD]
    done_before = order[: order.index(Step(failed_step))]
    undo = [_sig(app, _UNDO[step], saga_id, user_id) for step in reversed(done_before) if step in _UNDO]
    return chain(
        _sig(app, TaskName.BEGIN_COMPENSATION, saga_id, failed_step),
        *undo,
        _sig(app, TaskName.FAIL_REGISTRATION, saga_id),
    )


def welcome_chain(app: Celery, saga_id: str, user_id: int) -> Signature:
    """The step after the pivot, then its record in the saga log."""
    return chain(
        _sig(app, TaskName.SEND_WELCOME_EMAIL, saga_id, user_id, task_id=step_task_id(saga_id, Step.SEND_WELCOME_EMAIL)),
        _sig(app, TaskName.RECORD_STEP_EVENT, saga_id, Step.SEND_WELCOME_EMAIL.value, "done", None, 0),
    )


def registration_saga(app: Celery, saga_id: str, payload: RegistrationPayload) -> Signature:
    """The whole saga as one Celery chain, ready for ``apply_async``."""
    data = payload.model_dump()
    steps = []
    for step, task in _FORWARD:
        args: tuple[object, ...] = (saga_id,) if task == TaskName.COMPLETE_REGISTRATION else (saga_id, data)
        sig = _sig(app, task, *args, task_id=step_task_id(saga_id, step))
        sig.on_error(compensation_chain(app, saga_id, payload.user_id, step))
        steps.append(sig)
    # After the pivot: a mail cannot be unsent, so this step only retries and never compensates.
    return chain(*steps, welcome_chain(app, saga_id, payload.user_id))
