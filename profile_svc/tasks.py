"""The profile worker: creates the profile in the registration saga, and removes it to compensate.

Run: celery -A profile_svc.tasks worker -Q profile
"""

import uuid
from functools import cache

from celery.signals import worker_process_init
from sqlalchemy import delete
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from saga import RegistrationPayload, SagaTask, Step, TaskName, claim_step, create_celery_app, failpoint, tombstone_step

from .config import get_settings
from .db import make_sessionmaker
from .models import Profile, SagaStepLog

celery_app = create_celery_app("profile", get_settings().broker_url)

TRANSIENT = (OperationalError, InterfaceError)


class ProfileConflict(Exception):
    """A profile for this user exists from another saga: a permanent failure."""


@cache
def sessions() -> sessionmaker[Session]:
    return make_sessionmaker(get_settings().database_url)


@worker_process_init.connect
def _fresh_pool_after_fork(**_: object) -> None:
    sessions.cache_clear()


@celery_app.task(
    name=TaskName.CREATE_PROFILE,
    base=SagaTask,
    step=Step.CREATE_PROFILE,
    autoretry_for=TRANSIENT,
    max_retries=5,
    retry_backoff=1,
    retry_backoff_max=30,
)
def create_profile(saga_id: str, payload: dict[str, object]) -> None:
    user = RegistrationPayload.model_validate(payload)
    with sessions().begin() as session:
        if not claim_step(session, SagaStepLog, uuid.UUID(saga_id), Step.CREATE_PROFILE):
            return  # delivered twice: already done
        failpoint(Step.CREATE_PROFILE, user.email)
        existing = session.get(Profile, user.user_id)
        if existing is not None:
            raise ProfileConflict(f"user {user.user_id} already has a profile from saga {existing.saga_id}")
        session.add(Profile(user_id=user.user_id, first_name=user.first_name, last_name=user.last_name, saga_id=uuid.UUID(saga_id)))


@celery_app.task(
    name=TaskName.REMOVE_PROFILE, base=SagaTask, autoretry_for=TRANSIENT, max_retries=None, retry_backoff=1, retry_backoff_max=30
)
def remove_profile(saga_id: str, user_id: int) -> None:
    saga = uuid.UUID(saga_id)
    with sessions().begin() as session:
        tombstone_step(session, SagaStepLog, saga, Step.CREATE_PROFILE)
        session.execute(delete(Profile).where(Profile.user_id == user_id, Profile.saga_id == saga))
