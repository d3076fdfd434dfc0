from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response, status

from saga import ensure_owner

from . import mailer
from .deps import CeleryDep, ClientAddress, ReadSessionDep, SendThrottleDep, SessionFactoryDep, SettingsDep, TokenSubject
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
def send_email(
    body: SendRequest,
    response: Response,
    subject: TokenSubject,
    sessions: SessionFactoryDep,
    celery: CeleryDep,
    throttle: SendThrottleDep,
    address: ClientAddress,
    settings: SettingsDep,
) -> MessageOut:
    """Queue a message to a registered user; its delivery state is at the returned URL.

    Rate limited per client address and per recipient (EMAILS_SEND_RATE_PER_*): 429 with Retry-After.
    """
    ensure_owner(subject, body.user_id)
    _throttle(throttle, address, body.user_id)
    with sessions.begin() as session:
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
            smtp_message_id=mailer.new_message_id(settings.mail_from),
        )
        session.add(message)
    # Committed: the relay publishes it if this fails.
    publish_pending(sessions, celery, message_id=message.id)
    response.headers["Location"] = f"/v1/emails/{message.id}"
    return MessageOut.model_validate(message)


def _throttle(throttle: SendThrottle, address: str, user_id: int) -> None:
    retry_after = throttle.retry_after(address, user_id)
    if retry_after is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, "too many mails sent, try again later", headers={"Retry-After": str(retry_after)}
        )


@router.get("/emails/{message_id:int}", response_model=MessageOut, responses=ERRORS)
@router.get("/emails/{message_id:int}/", include_in_schema=False)
def get_email(message_id: Annotated[int, Path(ge=1, le=2**63 - 1)], session: ReadSessionDep, subject: TokenSubject) -> MessageOut:
    message = session.get(Message, message_id)
    if message is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "message not found")
    ensure_owner(subject, message.user_id)
    return MessageOut.model_validate(message)
