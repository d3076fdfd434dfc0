from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import exists, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from saga import ReadEngineDep, ensure_owner

from . import queries
from .deps import ReadSessionDep, SessionDep, TokenSubject
from .models import Profile, Subscription
from .schemas import ErrorOut, ProfileAddRequest, ProfileOut, SubscriptionAddRequest, SubscriptionOut

router = APIRouter(prefix="/v1")
# Only when PROFILE_REQUIRE_ACCESS_TOKEN is on.
AUTH: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "no valid access token (when tokens are required)"},
    403: {"model": ErrorOut, "description": "the token is another user's (when tokens are required)"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}, **AUTH}
UserId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _profile_or_404(session: Session, user_id: int, *, lock: bool = False) -> Profile:
    # Profiles exist only for users the registration saga created, and not while they are deleted.
    profile = session.get(Profile, user_id, with_for_update=lock)
    if profile is None or profile.archived_at is not None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "user not found")
    return profile


def _read_profile(session: Session, user_id: int) -> ProfileOut:
    """The profile and whether the user is subscribed, in one query."""
    subscribed = exists().where(Subscription.user_id == Profile.user_id)
    row = session.execute(select(Profile, subscribed).where(Profile.user_id == user_id, Profile.archived_at.is_(None))).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "user not found")
    profile, is_subscribed = row
    return ProfileOut.model_validate(
        {**{c: getattr(profile, c) for c in ProfileOut.model_fields if c != "subscribed"}, "subscribed": is_subscribed}
    )


@router.post("/profile/add/", status_code=status.HTTP_201_CREATED, response_model=ProfileOut, responses=NOT_FOUND)
@router.post("/profile/add", include_in_schema=False, status_code=status.HTTP_201_CREATED)
def add_profile(body: ProfileAddRequest, session: SessionDep, subject: TokenSubject) -> ProfileOut:
    """Set the account details on a registered user's profile."""
    ensure_owner(subject, body.user_id)
    profile = _profile_or_404(session, body.user_id, lock=True)
    profile.account_type = body.account_type
    profile.iban = body.iban
    session.flush()
    return _read_profile(session, body.user_id)


@router.get("/profile/{user_id:int}", response_model=ProfileOut, responses=NOT_FOUND)
@router.get("/profile/{user_id:int}/", include_in_schema=False)
async def get_profile(user_id: UserId, reads: ReadEngineDep, subject: TokenSubject) -> ProfileOut:
    ensure_owner(subject, user_id)
    profile = await run_in_threadpool(queries.profile_by_user_id, reads, user_id)
    if profile is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "user not found")
    return profile


@router.post(
    "/subscription/add/",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionOut,
    responses={**NOT_FOUND, 409: {"model": ErrorOut}},
)
@router.post("/subscription/add", include_in_schema=False, status_code=status.HTTP_201_CREATED)
def add_subscription(body: SubscriptionAddRequest, session: SessionDep, subject: TokenSubject) -> SubscriptionOut:
    ensure_owner(subject, body.user_id)
    _profile_or_404(session, body.user_id)
    created = session.scalar(
        insert(Subscription).values(user_id=body.user_id, plan=body.plan).on_conflict_do_nothing().returning(Subscription)
    )
    if created is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "user already has a subscription")
    return SubscriptionOut.model_validate(created)


@router.get("/subscription/{user_id:int}", response_model=SubscriptionOut, responses=NOT_FOUND)
@router.get("/subscription/{user_id:int}/", include_in_schema=False)
def get_subscription(user_id: UserId, session: ReadSessionDep, subject: TokenSubject) -> SubscriptionOut:
    ensure_owner(subject, user_id)
    # Not while the profile is archived (the account deleted): then it is kept, not shown.
    live = select(Subscription).join(Profile, Profile.user_id == Subscription.user_id).where(Profile.archived_at.is_(None))
    subscription = session.scalar(live.where(Subscription.user_id == user_id))
    if subscription is None:
        _profile_or_404(session, user_id)
        raise HTTPException(status.HTTP_404_NOT_FOUND, "subscription not found")
    return SubscriptionOut.model_validate(subscription)
