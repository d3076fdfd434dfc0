"""The profile worker: creates the profile in the registration saga (and removes it to compensate),
archives, restores and purges it in the account sagas.

Run: celery -A profile_svc.tasks worker -Q profile
"""

import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from saga import (
    DeletionPayload,
    DeletionStep,
    PersistentTask,
    PurgePayload,
    PurgeStep,
    RegistrationPayload,
    RegistrationStep,
    RestoreStep,
    StepTask,
    TaskName,
    claim_step,
    compensate_step,
    create_celery_app,
    failpoint,
    make_sessionmaker,
    per_worker_process,
    serve_worker_metrics,
    tombstone_step,
    user_id_of,
)

from .config import get_settings
from .models import Profile, SagaStepLog

log = logging.getLogger(__name__)
celery_app = create_celery_app("profile", lambda: get_settings().broker_url)
serve_worker_metrics(lambda: (get_settings().worker_metrics_port, get_settings().metrics_address))  # read when the worker starts


class ProfileConflict(Exception):
    """A profile for this user exists from another saga: a permanent failure."""


sessions = per_worker_process(lambda: make_sessionmaker(get_settings().database_url))


@celery_app.task(
    name=TaskName.CREATE_PROFILE,
    base=StepTask,
    step=RegistrationStep.CREATE_PROFILE,
)
def create_profile(saga_id: str, payload: dict[str, object]) -> None:
    user = RegistrationPayload.model_validate(payload)
    with sessions().begin() as session:
        if not claim_step(session, SagaStepLog, uuid.UUID(saga_id), RegistrationStep.CREATE_PROFILE):
            return  # delivered twice: already done
        failpoint(RegistrationStep.CREATE_PROFILE, user.email)
        existing = session.get(Profile, user.user_id)
        if existing is not None:
            raise ProfileConflict(f"user {user.user_id} already has a profile from saga {existing.saga_id}")
        session.add(Profile(user_id=user.user_id, first_name=user.first_name, last_name=user.last_name, saga_id=uuid.UUID(saga_id)))


@celery_app.task(
    name=TaskName.REMOVE_PROFILE,
    base=PersistentTask,
)
def remove_profile(saga_id: str, payload: dict[str, object] | int) -> None:
    # ``payload`` is the saga's payload; a bare user id is the shape an older release queued (docs/architecture.md, "Deploys").
    user_id = user_id_of(payload)
    saga = uuid.UUID(saga_id)
    with sessions().begin() as session:
        tombstone_step(session, SagaStepLog, saga, RegistrationStep.CREATE_PROFILE)
        session.execute(delete(Profile).where(Profile.user_id == user_id, Profile.saga_id == saga))


# --- the account sagas: a deleted account's profile is archived (hidden, kept), restored, then purged


def _set_archived(session: Session, user_id: int, archived: bool) -> None:
    profile = session.get(Profile, user_id, with_for_update=True)
    if profile is None:
        log.warning("user %s has no profile to %s", user_id, "archive" if archived else "restore")
        return
    profile.archived_at = datetime.now(UTC) if archived else None


@celery_app.task(name=TaskName.ARCHIVE_PROFILE, base=StepTask, step=DeletionStep.ARCHIVE_PROFILE)
def archive_profile(saga_id: str, payload: dict[str, object]) -> None:
    user = DeletionPayload.model_validate(payload)
    with sessions().begin() as session:
        if not claim_step(session, SagaStepLog, uuid.UUID(saga_id), DeletionStep.ARCHIVE_PROFILE):
            return  # delivered twice: already done
        failpoint(DeletionStep.ARCHIVE_PROFILE, user.email)
        _set_archived(session, user.user_id, archived=True)


@celery_app.task(name=TaskName.UNDO_ARCHIVE_PROFILE, base=PersistentTask)
def undo_archive_profile(saga_id: str, payload: dict[str, object]) -> None:
    user = DeletionPayload.model_validate(payload)
    with sessions().begin() as session:
        if compensate_step(session, SagaStepLog, uuid.UUID(saga_id), DeletionStep.ARCHIVE_PROFILE):
            _set_archived(session, user.user_id, archived=False)


@celery_app.task(name=TaskName.RESTORE_PROFILE, base=StepTask, step=RestoreStep.RESTORE_PROFILE)
def restore_profile(saga_id: str, payload: dict[str, object]) -> None:
    user = RegistrationPayload.model_validate(payload)
    with sessions().begin() as session:
        if not claim_step(session, SagaStepLog, uuid.UUID(saga_id), RestoreStep.RESTORE_PROFILE):
            return
        failpoint(RestoreStep.RESTORE_PROFILE, user.email)
        _set_archived(session, user.user_id, archived=False)


@celery_app.task(name=TaskName.UNDO_RESTORE_PROFILE, base=PersistentTask)
def undo_restore_profile(saga_id: str, payload: dict[str, object]) -> None:
    user = RegistrationPayload.model_validate(payload)
    with sessions().begin() as session:
        if compensate_step(session, SagaStepLog, uuid.UUID(saga_id), RestoreStep.RESTORE_PROFILE):
            _set_archived(session, user.user_id, archived=True)


@celery_app.task(name=TaskName.PURGE_PROFILE, base=PersistentTask, step=PurgeStep.PURGE_PROFILE)
def purge_profile(saga_id: str, payload: dict[str, object]) -> None:
    """The restore period ended: the profile and its subscription go for good (idempotent)."""
    user = PurgePayload.model_validate(payload)
    with sessions().begin() as session:
        session.execute(delete(Profile).where(Profile.user_id == user.user_id, Profile.archived_at.is_not(None)))
