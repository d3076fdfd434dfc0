"""The users worker: the sagas' pivots, the start and end of compensation, and the saga log.

Run: celery -A users_svc.tasks worker -Q users
"""

import uuid
from collections.abc import Iterable
from datetime import datetime

from celery import Task
from sqlalchemy.orm import Session

from saga import (
    DeletionStep,
    PersistentTask,
    PurgeStep,
    RegistrationStep,
    RestoreStep,
    SagaKind,
    StepReport,
    StepTask,
    TaskName,
    carried_reports,
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
    """The users service's own step writes its history itself, and the earlier steps' reports
    its message carried (``saga.REPORTS_HEADER``), in the pivot's transaction."""
    started_at = engine.now()
    with sessions().begin() as session:
        _record(session, uuid.UUID(saga_id), carried_reports(task.request))
        engine.pass_pivot(session, uuid.UUID(saga_id), kind, attempt=task.request.retries + 1, started_at=started_at)


def _record(session: Session, saga_id: uuid.UUID, reports: Iterable[StepReport]) -> None:
    for report in reports:
        engine.record_step_event(
            session,
            saga_id,
            report.step,
            report.outcome,
            report.error,
            report.attempt,
            datetime.fromisoformat(report.started_at) if report.started_at else None,
            datetime.fromisoformat(report.finished_at) if report.finished_at else None,
        )


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


@celery_app.task(name=TaskName.RECORD_STEP_EVENTS, base=PersistentTask)
def record_step_events(saga_id: str, reports: list[list[object]]) -> None:
    """Runs of the saga's steps, as their workers reported them, in one transaction."""
    with sessions().begin() as session:
        _record(session, uuid.UUID(saga_id), (StepReport(*report) for report in reports))  # type: ignore[arg-type]  # JSON lists


# Deprecated: one report per message, sent before the reports were carried on (docs/architecture.md,
# "Deploys"). Its last two arguments came with the saga history; messages queued before it have five.
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
        _record(session, uuid.UUID(saga_id), [StepReport(step, event, error, attempt, started_at, finished_at)])
