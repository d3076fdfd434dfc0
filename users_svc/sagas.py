"""The operators' view of the sagas: search, each saga's history, and the actions an operator may take.

Every endpoint here wants an operator's access token (401 without a valid token, 403 without the
role); every action is recorded in the saga's history with the operator as its actor.
"""

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from celery import Celery
from fastapi import APIRouter, HTTPException, Query, Request, status
from sqlalchemy import ColumnElement, Select, and_, func, select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from . import engine, outbox
from .deps import CurrentOperator, ReadSessionDep, SessionDep, SettingsDep
from .models import Saga, SagaEvent, SagaStatus, SagaStep, UserAccount
from .schemas import (
    AttentionRequest,
    ErrorOut,
    Responses,
    SagaCounts,
    SagaEventOut,
    SagaHistory,
    SagaPage,
    SagaStepState,
    SagaSummary,
)

router = APIRouter(
    prefix="/v1/sagas",
    tags=["operators"],
    responses={
        401: {"model": ErrorOut, "description": "no valid access token"},
        403: {"model": ErrorOut, "description": "the token's user is not an operator"},
    },
)
NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "no such saga"}}
Kind = Literal["registration", "deletion", "restore", "purge"]
Status = Literal["running", "compensating", "completed", "failed"]


def _encode_cursor(created_at: datetime, saga_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(saga_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created_at, saga_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(created_at), uuid.UUID(saga_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid cursor: pass next_cursor from the previous page") from None


def _stale_before(stale_after_seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=stale_after_seconds)


def _summaries(session: Session, query: Select[Saga, str, str | None], stale_before: datetime) -> list[SagaSummary]:
    return [_summary(row[0], row[1], row[2], stale_before) for row in session.execute(query)]


def _summary(saga: Saga, email: str, error: str | None, stale_before: datetime) -> SagaSummary:
    return SagaSummary(
        id=saga.id,
        kind=saga.kind,
        status=saga.status,
        user_id=saga.user_id,
        email=email,
        failed_step=saga.failed_step,
        error=error,
        created_at=saga.created_at,
        progressed_at=saga.progressed_at,
        finished_at=saga.finished_at,
        redrive_count=saga.redrive_count,
        needs_attention=saga.needs_attention,
        attention_note=saga.attention_note,
        stuck=saga.finished_at is None and saga.progressed_at < stale_before,
        url=f"/v1/sagas/{saga.id}/events",
    )


def _with_email_and_error() -> Select[Saga, str, str | None]:
    failed = and_(SagaStep.saga_id == Saga.id, SagaStep.step == Saga.failed_step)
    return select(Saga, UserAccount.email, SagaStep.error).join(UserAccount, UserAccount.id == Saga.user_id).outerjoin(SagaStep, failed)


def summary_of(session: Session, saga_id: uuid.UUID, stale_after_seconds: float) -> SagaSummary:
    found = _summaries(session, _with_email_and_error().where(Saga.id == saga_id), _stale_before(stale_after_seconds))
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "saga not found")
    return found[0]


@router.get("", response_model=SagaPage)
@router.get("/", include_in_schema=False)
def list_sagas(
    session: ReadSessionDep,
    settings: SettingsDep,
    operator: CurrentOperator,
    kind: Kind | None = None,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    user_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    email: Annotated[str | None, Query(min_length=1, max_length=320, description="exact, case-insensitive")] = None,
    created_since: Annotated[datetime | None, Query(description="ISO 8601")] = None,
    created_until: Annotated[datetime | None, Query(description="ISO 8601")] = None,
    stuck: Annotated[bool | None, Query(description="not finished and not progressing for USERS_SAGA_STALE_AFTER_SECONDS")] = None,
    attention: Annotated[bool | None, Query(description="marked as needing attention")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")] = None,
) -> SagaPage:
    """Sagas newest first, filtered; keyset pages; the count per status over the same filters (status aside)."""
    if email is not None and "\x00" in email:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "email must not contain NUL characters")
    stale_before = _stale_before(settings.saga_stale_after_seconds)
    filters: list[ColumnElement[bool]] = []
    if kind is not None:
        filters.append(Saga.kind == kind)
    if user_id is not None:
        filters.append(Saga.user_id == user_id)
    if email is not None:
        filters.append(Saga.user_id.in_(select(UserAccount.id).where(func.lower(UserAccount.email) == email.strip().lower())))
    if created_since is not None:
        filters.append(Saga.created_at >= _aware(created_since))
    if created_until is not None:
        filters.append(Saga.created_at < _aware(created_until))
    if stuck is not None:
        is_stuck = and_(Saga.finished_at.is_(None), Saga.progressed_at < stale_before)
        filters.append(is_stuck if stuck else ~is_stuck)
    if attention is not None:
        # As the partial index's predicate is written, so the planner uses it.
        filters.append(Saga.needs_attention.expression if attention else ~Saga.needs_attention)

    page = _with_email_and_error().where(*filters)
    if status_ is not None:
        page = page.where(Saga.status == status_)
    if cursor is not None:
        created_at, saga_id = _decode_cursor(cursor)
        page = page.where(tuple_(Saga.created_at, Saga.id) < tuple_(created_at, saga_id))
    items = _summaries(session, page.order_by(Saga.created_at.desc(), Saga.id.desc()).limit(limit + 1), stale_before)
    next_cursor = _encode_cursor(items[limit - 1].created_at, items[limit - 1].id) if len(items) > limit else None

    counts = SagaCounts()
    per_status = select(Saga.status, func.count(), func.count().filter(Saga.needs_attention)).where(*filters).group_by(Saga.status)
    for saga_status, count, needing_attention in session.execute(per_status):
        if saga_status in SagaStatus.__members__.values():
            setattr(counts, saga_status, count)
        counts.attention += needing_attention
    return SagaPage(items=items[:limit], next_cursor=next_cursor, counts=counts)


def _aware(moment: datetime) -> datetime:
    """A time without an offset is taken as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@router.get("/{saga_id}/events", response_model=SagaHistory, responses=NOT_FOUND)
@router.get("/{saga_id}/events/", include_in_schema=False)
def saga_events(saga_id: uuid.UUID, session: ReadSessionDep, settings: SettingsDep, operator: CurrentOperator) -> SagaHistory:
    """The saga, its steps' current state, and its history: every event, oldest first."""
    summary = summary_of(session, saga_id, settings.saga_stale_after_seconds)
    steps = session.scalars(select(SagaStep).where(SagaStep.saga_id == saga_id).order_by(SagaStep.position))
    events = session.scalars(select(SagaEvent).where(SagaEvent.saga_id == saga_id).order_by(SagaEvent.at, SagaEvent.id))
    return SagaHistory(
        saga=summary,
        steps=[SagaStepState.model_validate(step) for step in steps],
        items=[SagaEventOut.model_validate(event) for event in events],
    )


def _locked(session: Session, saga_id: uuid.UUID) -> Saga:
    try:
        return engine.lock_saga(session, saga_id)
    except LookupError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "saga not found") from None


@router.post(
    "/{saga_id}/redrive",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SagaSummary,
    responses={**NOT_FOUND, 409: {"model": ErrorOut, "description": "the saga is over: nothing to re-drive"}},
)
def redrive_saga(saga_id: uuid.UUID, request: Request, settings: SettingsDep, operator: CurrentOperator) -> SagaSummary:
    """Publish the saga again now, as the watchdog would once it stalled: its steps, its compensation,
    or its steps after the pivot, by its state. Recorded in its history with the operator as actor."""
    make_session: sessionmaker[Session] = request.app.state.sessions
    with make_session.begin() as session:
        saga = _locked(session, saga_id)
        try:
            engine.redrive(session, saga, operator.email)
        except engine.SagaFinished:
            raise HTTPException(status.HTTP_409_CONFLICT, f"the saga is over ({saga.status}): nothing to re-drive") from None
    # Committed; publish now (the relay publishes it if this fails).
    celery_app: Celery = request.app.state.celery
    outbox.publish_outbox(make_session, celery_app, saga_id=saga_id)
    with request.app.state.reads() as session:
        return summary_of(session, saga_id, settings.saga_stale_after_seconds)


@router.post("/{saga_id}/attention", response_model=SagaSummary, responses=NOT_FOUND)
def mark_attention(
    saga_id: uuid.UUID, body: AttentionRequest, session: SessionDep, settings: SettingsDep, operator: CurrentOperator
) -> SagaSummary:
    """Mark the saga as needing attention, with a note (already marked: unchanged)."""
    saga = _locked(session, saga_id)
    engine.mark_attention(session, saga, operator.email, body.note)
    session.flush()
    return summary_of(session, saga_id, settings.saga_stale_after_seconds)


@router.delete("/{saga_id}/attention", response_model=SagaSummary, responses=NOT_FOUND)
def clear_attention(saga_id: uuid.UUID, session: SessionDep, settings: SettingsDep, operator: CurrentOperator) -> SagaSummary:
    """Clear the saga's need for attention (not marked: unchanged)."""
    saga = _locked(session, saga_id)
    engine.clear_attention(session, saga, operator.email)
    session.flush()
    return summary_of(session, saga_id, settings.saga_stale_after_seconds)
