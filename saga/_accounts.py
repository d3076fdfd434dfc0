"""The account sagas: deletion, restore and purge; their steps, queues and compensations.

    deletion: send_goodbye_email -> archive_profile -> erase_address -> complete_deletion (pivot)
                 (emails)            (profile)          (emails)         (users)
    restore:  restore_profile -> recall_address -> complete_restore (pivot)
                 (profile)         (emails)          (users)
    purge:    purge_profile -> purge_address -> purge_account
                 (profile)       (emails)        (users)

Built like the registration saga: one Celery chain of immutable signatures by name, each on
its owner's queue, with deterministic task ids. Every step of the deletion and restore sagas
carries a ``link_error`` chain: ``begin_compensation`` (which refuses once the pivot passed),
the undo tasks of the compensatable steps that ran before the failed one, latest first, then
``fail_saga``. The goodbye mail has no undo (a sent mail cannot be unsent): it is the one step
of the deletion saga that is not compensated, and it comes first because the issue asks for
it and because the emails service must still know the address to write to. The purge saga
runs only after the restore period ended; it has nothing to compensate, so its steps only
retry and the watchdog re-drives it until it is done.

Steps on the profile and emails queues take ``(saga_id, payload)``; the users service's own
steps take ``(saga_id,)`` and read the rest from its database.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from celery import Celery, chain
from celery.canvas import Signature

from ._names import DeletionStep, PurgeStep, Queue, RestoreStep, SagaKind, TaskName, queue_of
from ._registration import _sig, step_task_id


@dataclass(frozen=True)
class SagaDefinition:
    """A saga whose last step is its pivot: the steps before it are compensated, or not at all."""

    kind: SagaKind
    steps: tuple[tuple[str, TaskName], ...]
    # What undoes each compensatable step, keyed by the step it undoes.
    undo: Mapping[str, TaskName] = field(default_factory=dict)
    # False for a saga that never compensates: its failed steps are retried by the watchdog.
    compensated: bool = True

    @property
    def step_names(self) -> list[str]:
        return [step for step, _ in self.steps]

    @property
    def pivot(self) -> str:
        return self.steps[-1][0]

    def saga(self, app: Celery, saga_id: str, payload: dict[str, object]) -> Signature:
        """The whole saga as one Celery chain, ready for ``apply_async``."""
        signatures = []
        for step, task in self.steps:
            sig = _sig(app, task, *_args(task, saga_id, payload), task_id=step_task_id(saga_id, step))
            if self.compensated:
                sig.on_error(self.compensation_chain(app, saga_id, payload, step))
            signatures.append(sig)
        return chain(*signatures)

    def compensation_chain(self, app: Celery, saga_id: str, payload: dict[str, object], failed_step: str) -> Signature:
        """Undo every compensatable step that ran before ``failed_step``, latest first."""
        if not self.compensated:
            raise ValueError(f"the {self.kind} saga has no compensations")
        done_before = self.step_names[: self.step_names.index(failed_step)]
        undo = [_sig(app, self.undo[step], saga_id, payload) for step in reversed(done_before) if step in self.undo]
        return chain(
            _sig(app, TaskName.BEGIN_COMPENSATION, saga_id, failed_step),
            *undo,
            _sig(app, TaskName.FAIL_SAGA, saga_id),
        )


def _args(task: TaskName, saga_id: str, payload: dict[str, object]) -> tuple[object, ...]:
    return (saga_id,) if queue_of(task) == Queue.USERS else (saga_id, payload)


DELETION = SagaDefinition(
    kind=SagaKind.DELETION,
    steps=(
        (DeletionStep.SEND_GOODBYE_EMAIL, TaskName.SEND_GOODBYE_EMAIL),
        (DeletionStep.ARCHIVE_PROFILE, TaskName.ARCHIVE_PROFILE),
        (DeletionStep.ERASE_ADDRESS, TaskName.ERASE_ADDRESS),
        (DeletionStep.COMPLETE_DELETION, TaskName.COMPLETE_DELETION),
    ),
    undo={
        DeletionStep.ARCHIVE_PROFILE: TaskName.UNDO_ARCHIVE_PROFILE,
        DeletionStep.ERASE_ADDRESS: TaskName.UNDO_ERASE_ADDRESS,
    },
)

RESTORE = SagaDefinition(
    kind=SagaKind.RESTORE,
    steps=(
        (RestoreStep.RESTORE_PROFILE, TaskName.RESTORE_PROFILE),
        (RestoreStep.RECALL_ADDRESS, TaskName.RECALL_ADDRESS),
        (RestoreStep.COMPLETE_RESTORE, TaskName.COMPLETE_RESTORE),
    ),
    undo={
        RestoreStep.RESTORE_PROFILE: TaskName.UNDO_RESTORE_PROFILE,
        RestoreStep.RECALL_ADDRESS: TaskName.UNDO_RECALL_ADDRESS,
    },
)

PURGE = SagaDefinition(
    kind=SagaKind.PURGE,
    steps=(
        (PurgeStep.PURGE_PROFILE, TaskName.PURGE_PROFILE),
        (PurgeStep.PURGE_ADDRESS, TaskName.PURGE_ADDRESS),
        (PurgeStep.PURGE_ACCOUNT, TaskName.PURGE_ACCOUNT),
    ),
    compensated=False,
)

ACCOUNT_SAGAS = {definition.kind: definition for definition in (DELETION, RESTORE, PURGE)}
