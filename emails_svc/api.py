from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from sqlalchemy.orm import Session, sessionmaker

from saga import TokenSubject, ensure_owner

from . import mailer
from .models import DeliveryStatus, Message, MessageKind, Recipient
from .outbox import publish_pending
from .schemas import ErrorOut, MessageOut, SendRequest
from .throttle import SendThrottle

router = APIRouter(prefix="/v1")
# 401 and 403 only when EMAILS_REQUIRE_ACCESS_TOKEN is on.
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut},
    401: {"model": ErrorOut, "description": "no valid access token (when tokens are required)"},
    403: {"model": ErrorOut, "description": "the token is another user's (when tokens are required)"},
}
THROTTLED: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorOut, "description": "too many mails from this address or to this user; see Retry-After"}
}


@router.post("/emails/send/", status_code=status.HTTP_202_ACCEPTED, response_model=MessageOut, responses=ERRORS | THROTTLED)
@router.post("/emails/send", include_in_schema=False, status_code=status.HTTP_202_ACCEPTED)
def send_email(body: SendRequest, request: Request, response: Response, subject: TokenSubject) -> MessageOut:
    """Queue a message to a registered user; its delivery state is at the returned URL.

    Rate limited per client address and per recipient (EMAILS_SEND_RATE_PER_*): 429 with Retry-After.
    """
    ensure_owner(subject, body.user_id)
    _throttle(request, body.user_id)
    make_session: sessionmaker[Session] = request.app.state.sessions
    sender = request.app.state.settings.mail_from
    with make_session.begin() as session:
        recipient = session.get(Recipient, body.user_id)
        if recipient is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "user not found")
        message = Message(
            user_id=body.user_id,
            kind=MessageKind.CUSTOM,
            to_address=recipient.email,
            to_name=f"{recipient.first_name} {recipient.last_name}",
            subject=body.subject,
            body_text=body.body,
            status=DeliveryStatus.QUEUED,
            attempts=0,
            smtp_message_id=mailer.new_message_id(sender),
        )
        session.add(message)
    # Committed: the relay publishes it if this fails.
    publish_pending(make_session, request.app.state.celery, message_id=message.id)
    response.headers["Location"] = f"/v1/emails/{message.id}"
    return MessageOut.model_validate(message)


def _throttle(request: Request, user_id: int) -> None:
    # Behind the gateway uvicorn sets the client from X-Forwarded-For (trusted proxies from
    # FORWARDED_ALLOW_IPS), so this is the caller's address, not nginx's.
    address = request.client.host if request.client else "unknown"
    throttle: SendThrottle = request.app.state.send_throttle
    retry_after = throttle.retry_after(address, user_id)
    if retry_after is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, "too many mails sent, try again later", headers={"Retry-After": str(retry_after)}
        )


@router.get("/emails/{message_id:int}", response_model=MessageOut, responses=ERRORS)
@router.get("/emails/{message_id:int}/", include_in_schema=False)
def get_email(message_id: Annotated[int, Path(ge=1, le=2**63 - 1)], request: Request, subject: TokenSubject) -> MessageOut:
    with request.app.state.reads() as session:
        message = session.get(Message, message_id)
    if message is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "message not found")
    ensure_owner(subject, message.user_id)
    return MessageOut.model_validate(message)
