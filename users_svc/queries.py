"""The hot reads, in one style in every service: a SQLAlchemy Core statement of the columns the
answer needs, built once at import (so SQLAlchemy's compiled cache always hits), run on a pooled
connection of the read engine (autocommit) and turned straight into the response model. No ORM
session, identity map or entity on the way: those cost more than the query itself.

The endpoints are ``async`` and run these in the thread pool (``run_in_threadpool``): one thread
hop per read, where a plain ``def`` endpoint costs a hop for itself, one for each ``def``
dependency and one for validating its result.
"""

import uuid

from sqlalchemy import Engine, and_, bindparam, select

from saga import SagaKind

from .models import Saga, UserAccount
from .schemas import SagaRef, UserOut, registration_saga_url

_user = UserAccount.__table__
_saga = Saga.__table__


# A user not deleted (a deleted account is not shown, restorable or not), with its registration saga.
USER_BY_ID = (
    select(
        _user.c.id,
        _user.c.email,
        _user.c.first_name,
        _user.c.last_name,
        _user.c.active,
        _user.c.registration_status,
        _user.c.account_status,
        _user.c.created_at,
        _saga.c.id.label("saga_id"),
        _saga.c.status.label("saga_status"),
    )
    .outerjoin(_saga, and_(_saga.c.user_id == _user.c.id, _saga.c.kind == SagaKind.REGISTRATION))
    .where(_user.c.id == bindparam("user_id"), _user.c.deleted_at.is_(None))
)


def user_by_id(engine: Engine, user_id: int) -> UserOut | None:
    """``GET /v1/users/{id}``'s answer; None when there is no such user or it is deleted."""
    with engine.connect() as connection:
        row = connection.execute(USER_BY_ID, {"user_id": user_id}).first()
    if row is None:
        return None
    return UserOut(
        id=row.id,
        email=row.email,
        first_name=row.first_name,
        last_name=row.last_name,
        active=row.active,
        registration_status=row.registration_status,
        account_status=row.account_status,
        created_at=row.created_at,
        saga=None if row.saga_id is None else SagaRef(id=row.saga_id, status=row.saga_status, url=registration_saga_url(row.saga_id)),
    )


SAGA_STATUS = select(_saga.c.status).where(_saga.c.id == bindparam("saga_id"))


def saga_status(engine: Engine, saga_id: uuid.UUID) -> str | None:
    """A saga's status (None: no such saga); what a registration polls while it waits."""
    with engine.connect() as connection:
        status: str | None = connection.scalar(SAGA_STATUS, {"saga_id": saga_id})
    return status
