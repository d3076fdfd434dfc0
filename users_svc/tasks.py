"""The users worker: the sagas' pivots, the start and end of compensation, and the saga log.

Run: celery -A users_svc.tasks worker -Q users
"""

import uuid
from datetime import datetime

from celery import Task

from saga import (
    DeletionStep,
    PersistentTask,
    PurgeStep,
    RegistrationStep,
    RestoreStep,
    SagaKind,
    StepTask,
    TaskName,
    create_celery_app,
    make_sessionmaker,
    per_worker_process,
    serve_worker_metrics,
)

from . import engine
from .config import get_settings

celery_app = create_celery_app("users", lambda: get_settings().broker_url)
serve_worker_metrics(lambda: (get_settings().worker_metrics_port, get_settings().metrics_address))  # read when the worker starts


sessions = per_worker_process(lambda: make_sessionmaker(get_settings().database_url))


def _pass_pivot(task: Task, saga_id: str, kind: SagaKind) -> None:
    """The users service's own step writes its history itself: no report message needed."""
    started_at = engine.now()
    with sessions().begin() as session:
        engine.pass_pivot(session, uuid.UUID(saga_id), kind, attempt=task.request.retries + 1, started_at=started_at)


# The pivots: the users service's own steps, one per saga; the engine does the same for each.
@celery_app.task(name=TaskName.COMPLETE_REGISTRATION, base=StepTask, step=RegistrationStep.COMPLETE_REGISTRATION, reports_success=False)
def complete_registration(saga_id: str) -> None:
    _pass_pivot(complete_registration, saga_id, SagaKind.REGISTRATION)


@celery_app.task(name=TaskName.COMPLETE_DELETION, base=StepTask, step=DeletionStep.COMPLETE_DELETION, reports_success=False)
def complete_deletion(saga_id: str) -> None:
    _pass_pivot(complete_deletion, saga_id, SagaKind.DELETION)


@celery_app.task(name=TaskName.COMPLETE_RESTORE, base=StepTask, step=RestoreStep.COMPLETE_RESTORE, reports_success=False)
def complete_restore(saga_id: str) -> None:
    _pass_pivot(complete_restore, saga_id, SagaKind.RESTORE)


# The purge compensates nothing: its last step retries, and the watchdog re-drives it until done.
@celery_app.task(name=TaskName.PURGE_ACCOUNT, base=StepTask, step=PurgeStep.PURGE_ACCOUNT, reports_success=False)
def purge_account(saga_id: str) -> None:
    _pass_pivot(purge_account, saga_id, SagaKind.PURGE)


@celery_app.task(name=TaskName.BEGIN_COMPENSATION, base=PersistentTask)
def begin_compensation(saga_id: str, failed_step: str) -> None:
    with sessions().begin() as session:
        engine.begin_compensation(session, uuid.UUID(saga_id), failed_step)


@celery_app.task(name=TaskName.FAIL_SAGA, base=PersistentTask)
def fail_saga(saga_id: str) -> None:
    with sessions().begin() as session:
        engine.fail_saga(session, uuid.UUID(saga_id))


# Deprecated: the registration's compensation chains ended with this name before every saga was
# declared alike. Kept for messages an older release queued (docs/architecture.md, "Deploys").
@celery_app.task(name=TaskName.FAIL_REGISTRATION, base=PersistentTask)
def fail_registration(saga_id: str) -> None:
    with sessions().begin() as session:
        engine.fail_saga(session, uuid.UUID(saga_id))


# Its last two arguments came with the saga history; messages queued before it have five.
@celery_app.task(name=TaskName.RECORD_STEP_EVENT, base=PersistentTask)
def record_step_event(
    saga_id: str,
    step: str,
    event: str,
    error: str | None,
    attempt: int,
    started_at: str | None = None,
    finished_at: str | None = None,
) -> None:
    with sessions().begin() as session:
        engine.record_step_event(
            session,
            uuid.UUID(saga_id),
            step,
            event,
            error,
            attempt,
            datetime.fromisoformat(started_at) if started_at else None,
            datetime.fromisoformat(finished_at) if finished_at else None,
        )
