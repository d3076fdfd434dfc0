"""The users worker: the sagas' pivots, the start and end of compensation, and the saga log.

Run: celery -A users_svc.tasks worker -Q users
"""

import uuid
from functools import cache

from celery.signals import worker_process_init
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from saga import DeletionStep, PurgeStep, RegistrationStep, RestoreStep, SagaKind, SagaTask, TaskName, create_celery_app

from . import engine
from .config import get_settings
from .db import make_sessionmaker

celery_app = create_celery_app("users", get_settings().broker_url)

TRANSIENT = (OperationalError, InterfaceError)
# A pivot retries transient faults a few times before it counts as failed (and compensates).
_PIVOT_RETRY = {"autoretry_for": TRANSIENT, "max_retries": 5, "retry_backoff": 1, "retry_backoff_max": 30}
# Compensations and the saga log must not give up: they retry transient faults indefinitely.
_RETRY_FOREVER = {"autoretry_for": TRANSIENT, "max_retries": None, "retry_backoff": 1, "retry_backoff_max": 30}


@cache
def sessions() -> sessionmaker[Session]:
    return make_sessionmaker(get_settings().database_url)


@worker_process_init.connect
def _fresh_pool_after_fork(**_: object) -> None:
    sessions.cache_clear()


# The pivots: the users service's own steps, one per saga; the engine does the same for each.
@celery_app.task(name=TaskName.COMPLETE_REGISTRATION, base=SagaTask, step=RegistrationStep.COMPLETE_REGISTRATION, **_PIVOT_RETRY)
def complete_registration(saga_id: str) -> None:
    with sessions().begin() as session:
        engine.pass_pivot(session, uuid.UUID(saga_id), SagaKind.REGISTRATION)


@celery_app.task(name=TaskName.COMPLETE_DELETION, base=SagaTask, step=DeletionStep.COMPLETE_DELETION, **_PIVOT_RETRY)
def complete_deletion(saga_id: str) -> None:
    with sessions().begin() as session:
        engine.pass_pivot(session, uuid.UUID(saga_id), SagaKind.DELETION)


@celery_app.task(name=TaskName.COMPLETE_RESTORE, base=SagaTask, step=RestoreStep.COMPLETE_RESTORE, **_PIVOT_RETRY)
def complete_restore(saga_id: str) -> None:
    with sessions().begin() as session:
        engine.pass_pivot(session, uuid.UUID(saga_id), SagaKind.RESTORE)


# The purge compensates nothing: its last step retries, and the watchdog re-drives it until done.
@celery_app.task(name=TaskName.PURGE_ACCOUNT, base=SagaTask, step=PurgeStep.PURGE_ACCOUNT, **_PIVOT_RETRY)
def purge_account(saga_id: str) -> None:
    with sessions().begin() as session:
        engine.pass_pivot(session, uuid.UUID(saga_id), SagaKind.PURGE)


@celery_app.task(name=TaskName.BEGIN_COMPENSATION, base=SagaTask, **_RETRY_FOREVER)
def begin_compensation(saga_id: str, failed_step: str) -> None:
    with sessions().begin() as session:
        engine.begin_compensation(session, uuid.UUID(saga_id), failed_step)


@celery_app.task(name=TaskName.FAIL_SAGA, base=SagaTask, **_RETRY_FOREVER)
def fail_saga(saga_id: str) -> None:
    with sessions().begin() as session:
        engine.fail_saga(session, uuid.UUID(saga_id))


# Deprecated: the registration's compensation chains ended with this name before every saga was
# declared alike. Kept for messages an older release queued (docs/architecture.md, "Deploys").
@celery_app.task(name=TaskName.FAIL_REGISTRATION, base=SagaTask, **_RETRY_FOREVER)
def fail_registration(saga_id: str) -> None:
    with sessions().begin() as session:
        engine.fail_saga(session, uuid.UUID(saga_id))


@celery_app.task(name=TaskName.RECORD_STEP_EVENT, base=SagaTask, **_RETRY_FOREVER)
def record_step_event(saga_id: str, step: str, event: str, error: str | None, attempt: int) -> None:
    with sessions().begin() as session:
        engine.record_step_event(session, uuid.UUID(saga_id), step, event, error, attempt)
