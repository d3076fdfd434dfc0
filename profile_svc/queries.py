"""The hot reads: Core statements of the columns the answer needs, built once, run on the read
engine's pooled connections and turned straight into the response model (why: users_svc/queries.py)."""

from sqlalchemy import Engine, bindparam, exists, select

from .models import Profile, Subscription
from .schemas import ProfileOut

_profile = Profile.__table__
_subscription = Subscription.__table__


# A profile not archived (the account deleted), and whether the user is subscribed.
PROFILE_BY_USER_ID = select(
    _profile.c.user_id,
    _profile.c.first_name,
    _profile.c.last_name,
    _profile.c.account_type,
    _profile.c.iban,
    exists().where(_subscription.c.user_id == _profile.c.user_id).label("subscribed"),
    _profile.c.created_at,
    _profile.c.updated_at,
).where(_profile.c.user_id == bindparam("user_id"), _profile.c.archived_at.is_(None))


def profile_by_user_id(engine: Engine, user_id: int) -> ProfileOut | None:
    """``GET /v1/profile/{user_id}``'s answer; None when there is no such profile or it is archived."""
    with engine.connect() as connection:
        row = connection.execute(PROFILE_BY_USER_ID, {"user_id": user_id}).first()
    return None if row is None else ProfileOut.model_validate(row)
