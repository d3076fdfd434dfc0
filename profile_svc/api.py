from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from sqlalchemy import exists, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from .models import Profile, Subscription
from .schemas import ErrorOut, ProfileAddRequest, ProfileOut, SubscriptionAddRequest, SubscriptionOut

router = APIRouter(prefix="/v1")
UserId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def get_session(request: Request) -> Iterator[Session]:
    """The request's transaction: committed when the endpoint returns, rolled back on error."""
    with request.app.state.sessions.begin() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def _profile_or_404(session: Session, user_id: int, *, lock: bool = False) -> Profile:
    # Profiles exist only for users the registration saga created.
    profile = session.get(Profile, user_id, with_for_update=lock)
    if profile is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "user not found")
    return profile


def _read_profile(session: Session, user_id: int) -> ProfileOut:
    """The profile and whether the user is subscribed, in one query."""
    subscribed = exists().where(Subscription.user_id == Profile.user_id)
    row = session.execute(select(Profile, subscribed).where(Profile.user_id == user_id)).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "user not found")
    profile, is_subscribed = row
    return ProfileOut.model_validate(
        {**{c: getattr(profile, c) for c in ProfileOut.model_fields if c != "subscribed"}, "subscribed": is_subscribed}
    )


@router.post("/profile/add/", status_code=status.HTTP_201_CREATED, response_model=ProfileOut, responses={404: {"model": ErrorOut}})
@router.post("/profile/add", include_in_schema=False, status_code=status.HTTP_201_CREATED)
def add_profile(body: ProfileAddRequest, session: SessionDep) -> ProfileOut:
    """Set the account details on a registered user's profile."""
    profile = _profile_or_404(session, body.user_id, lock=True)
    profile.account_type = body.account_type
    profile.iban = body.iban
    session.flush()
    return _read_profile(session, body.user_id)


@router.get("/profile/{user_id:int}", response_model=ProfileOut, responses={404: {"model": ErrorOut}})
@router.get("/profile/{user_id:int}/", include_in_schema=False)
def get_profile(user_id: UserId, request: Request) -> ProfileOut:
    with request.app.state.reads() as session:
        return _read_profile(session, user_id)


@router.post(
    "/subscription/add/",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionOut,
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
@router.post("/subscription/add", include_in_schema=False, status_code=status.HTTP_201_CREATED)
def add_subscription(body: SubscriptionAddRequest, session: SessionDep) -> SubscriptionOut:
    _profile_or_404(session, body.user_id)
    created = session.scalar(
        insert(Subscription).values(user_id=body.user_id, plan=body.plan).on_conflict_do_nothing().returning(Subscription)
    )
    if created is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "user already has a subscription")
    return SubscriptionOut.model_validate(created)


@router.get("/subscription/{user_id:int}", response_model=SubscriptionOut, responses={404: {"model": ErrorOut}})
@router.get("/subscription/{user_id:int}/", include_in_schema=False)
def get_subscription(user_id: UserId, request: Request) -> SubscriptionOut:
    with request.app.state.reads() as session:
        subscription = session.scalar(select(Subscription).where(Subscription.user_id == user_id))
        if subscription is None:
            _profile_or_404(session, user_id)
            raise HTTPException(status.HTTP_404_NOT_FOUND, "subscription not found")
    return SubscriptionOut.model_validate(subscription)
