"""How a saga is declared: its steps in order, each on its owner's queue, its pivot, its compensations.

Every saga the users service runs (registration, deletion, restore, purge, and any added later)
is one ``SagaDeclaration``. The declaration turns into Celery chains of immutable signatures by
name, each on the queue of the service that owns its task, with deterministic task ids:

- ``saga``: every step in order. Each step up to the pivot carries a ``link_error`` chain that
  undoes what the earlier steps did, latest first (``compensation_chain``); the steps after the
  pivot carry none: they only retry (each reports itself done to the saga log, ``SagaTask``).
- ``compensation_chain``: ``begin_compensation`` (which refuses once the pivot passed), the undo
  tasks of the compensatable steps that ran before the failed one, latest first, then ``fail_saga``.
- ``after_pivot_chain``: the steps after the pivot alone, for a saga re-driven past its pivot.

Arguments: steps owned by the users service take ``(saga_id,)`` and read the rest from its
database; every other step and every compensation takes ``(saga_id, payload)``.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from celery import Celery, chain
from celery.canvas import Signature

from ._names import Queue, TaskName, queue_of

Payload = Mapping[str, object]


@dataclass(frozen=True)
class SagaStepDeclaration:
    """One step: its name in the saga log, the task that performs it, and what undoes it (if anything).

    Both tasks run on the queue of the service that owns them: by default the one their name
    starts with (``TaskName``), or ``owner`` for a queue of its own.
    """

    name: str
    task: str
    undo: str | None = None
    owner: str | None = None

    @property
    def queue(self) -> str:
        return self.owner or queue_of(self.task).value


@dataclass(frozen=True)
class SagaDeclaration:
    """A saga: steps in order; those up to ``pivot`` are compensated (if ``compensated``), those after only retry."""

    kind: str  # a SagaKind, or a saga declared elsewhere (the tests declare one)
    steps: tuple[SagaStepDeclaration, ...]
    pivot: str
    # False for a saga that never compensates: its failed steps are retried by the watchdog.
    compensated: bool = True

    def __post_init__(self) -> None:
        if self.pivot not in self.step_names:
            raise ValueError(f"the {self.kind} saga's pivot {self.pivot} is not one of its steps")
        if any(step.undo for step in self.after_pivot):
            raise ValueError(f"the {self.kind} saga's steps after the pivot only retry: they have nothing to undo")

    @property
    def step_names(self) -> list[str]:
        return [step.name for step in self.steps]

    @property
    def until_pivot(self) -> tuple[SagaStepDeclaration, ...]:
        return self.steps[: self.step_names.index(self.pivot) + 1]

    @property
    def after_pivot(self) -> tuple[SagaStepDeclaration, ...]:
        return self.steps[self.step_names.index(self.pivot) + 1 :]

    @property
    def compensatable(self) -> frozenset[str]:
        return frozenset(step.name for step in self.steps if step.undo)

    def saga(self, app: Celery, saga_id: str, payload: Payload) -> Signature:
        """The whole saga as one Celery chain, ready for ``apply_async``."""
        signatures = []
        for step in self.until_pivot:
            sig = _step_signature(app, step, saga_id, payload)
            if self.compensated:
                sig.on_error(self.compensation_chain(app, saga_id, payload, step.name))
            signatures.append(sig)
        return chain(*signatures, *self._after_pivot_signatures(app, saga_id, payload))

    def after_pivot_chain(self, app: Celery, saga_id: str, payload: Payload) -> Signature:
        """The steps after the pivot."""
        return chain(*self._after_pivot_signatures(app, saga_id, payload))

    def compensation_chain(self, app: Celery, saga_id: str, payload: Payload, failed_step: str) -> Signature:
        """Undo every compensatable step that ran before ``failed_step``, latest first."""
        if not self.compensated:
            raise ValueError(f"the {self.kind} saga has no compensations")
        done_before = self.steps[: self.step_names.index(failed_step)]
        undo = [_signature(app, step.undo, saga_id, dict(payload), queue=step.queue) for step in reversed(done_before) if step.undo]
        return chain(
            _signature(app, TaskName.BEGIN_COMPENSATION, saga_id, failed_step),
            *undo,
            _signature(app, TaskName.FAIL_SAGA, saga_id),
        )

    def _after_pivot_signatures(self, app: Celery, saga_id: str, payload: Payload) -> list[Signature]:
        # Before the history, a users.record_step_event(saga_id, step, "done", None, 0) followed each; still handled.
        return [_step_signature(app, step, saga_id, payload) for step in self.after_pivot]


def step_task_id(saga_id: str, step: str) -> str:
    """Deterministic task ids: a re-driven saga publishes the same ids again."""
    return f"{saga_id}:{step}"


def _step_signature(app: Celery, step: SagaStepDeclaration, saga_id: str, payload: Payload) -> Signature:
    args: tuple[object, ...] = (saga_id,) if step.queue == Queue.USERS else (saga_id, dict(payload))
    return _signature(app, step.task, *args, task_id=step_task_id(saga_id, step.name), queue=step.queue)


def _signature(app: Celery, name: str, *args: object, task_id: str | None = None, queue: str | None = None) -> Signature:
    # Immutable: Celery would otherwise prepend the previous result (or the failed request) to the arguments.
    options: dict[str, str] = {"queue": queue or queue_of(name).value}
    if task_id:
        options["task_id"] = task_id
    return app.signature(str(name), args=args, immutable=True, options=options)
