"""The emails service's tasks: its saga steps (recording and forgetting addresses, storing the
goodbye mail) on the ``emails`` queue, and mail delivery over SMTP on the ``mail`` queue.

Run: celery -A emails_svc.tasks worker -Q emails   (the saga steps)
     celery -A emails_svc.tasks worker -Q mail     (delivery: a slow SMTP server holds only these workers)

Both workers load every task: the emails worker still delivers the messages an older release
queued on ``emails`` (docs/architecture.md, "Deploys").
"""

import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from saga import (
    TRANSIENT_FAULTS,
    DeletionPayload,
    DeletionStep,
    PersistentTask,
    PurgePayload,
    PurgeStep,
    RegistrationPayload,
    RegistrationStep,
    RestoreStep,
    RetriedForeverTask,
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

from . import mailer
from .config import get_settings
from .models import DeliveryStatus, Message, MessageKind, Recipient, SagaStepLog
from .outbox import publish_pending
from .schemas import RecipientRecord

log = logging.getLogger(__name__)
# The settings are read when the worker starts (or a task first runs), not at import.
celery_app = create_celery_app("emails", lambda: get_settings().broker_url)
serve_worker_metrics(lambda: (get_settings().worker_metrics_port, get_settings().metrics_address))  # read when the worker starts

# Mail is retried until delivered: a transient fault never fails the step.
_MAIL_FAULTS = {"autoretry_for": (mailer.TransientDeliveryError, *TRANSIENT_FAULTS)}


class _MailBackoff:
    """The longest pause between two tries at a mail is a setting, read when Celery builds the task."""

    @property
    def retry_backoff_max(self) -> int:
        return get_settings().retry_backoff_max_seconds


class WelcomeMailTask(_MailBackoff, PersistentTask):  # type: ignore[override]  # a property for the class attribute: read late
    abstract = True


class MailDeliveryTask(_MailBackoff, RetriedForeverTask):  # type: ignore[override]  # a property for the class attribute: read late
    abstract = True


class AddressConflict(Exception):
    """An address for this user exists from another saga: a permanent failure."""


sessions = per_worker_process(lambda: make_sessionmaker(get_settings().database_url))


@celery_app.task(
    name=TaskName.RECORD_ADDRESS,
    base=StepTask,
    step=RegistrationStep.RECORD_ADDRESS,
)
def record_address(saga_id: str, payload: dict[str, object]) -> None:
    user = _recipient(payload)
    with sessions().begin() as session:
        if not claim_step(session, SagaStepLog, uuid.UUID(saga_id), RegistrationStep.RECORD_ADDRESS):
            return  # delivered twice: already done
        failpoint(RegistrationStep.RECORD_ADDRESS, user.email)
        existing = session.get(Recipient, user.user_id)
        if existing is not None:
            raise AddressConflict(f"user {user.user_id} already has an address from saga {existing.saga_id}")
        session.add(
            Recipient(
                user_id=user.user_id, email=user.email, first_name=user.first_name, last_name=user.last_name, saga_id=uuid.UUID(saga_id)
            )
        )


@celery_app.task(
    name=TaskName.FORGET_ADDRESS,
    base=PersistentTask,
)
def forget_address(saga_id: str, payload: dict[str, object] | int) -> None:
    # ``payload`` is the saga's payload; a bare user id is the shape an older release queued (docs/architecture.md, "Deploys").
    user_id = user_id_of(payload)
    saga = uuid.UUID(saga_id)
    with sessions().begin() as session:
        tombstone_step(session, SagaStepLog, saga, RegistrationStep.RECORD_ADDRESS)
        session.execute(delete(Recipient).where(Recipient.user_id == user_id, Recipient.saga_id == saga))


@celery_app.task(name=TaskName.SEND_WELCOME_EMAIL, base=WelcomeMailTask, step=RegistrationStep.SEND_WELCOME_EMAIL, **_MAIL_FAULTS)
def send_welcome_email(saga_id: str, payload: dict[str, object] | int) -> None:
    # ``payload`` is the saga's payload; a bare user id is the shape an older release queued (docs/architecture.md, "Deploys").
    user_id = user_id_of(payload)
    saga = uuid.UUID(saga_id)
    with sessions().begin() as session:
        recipient = session.get(Recipient, user_id)
        if recipient is None or recipient.saga_id != saga:
            log.warning("saga=%s no address for user %s: no welcome mail", saga_id, user_id)
            return
        text, html = mailer.render_welcome(recipient.first_name, recipient.email)
        values = {
            "user_id": user_id,
            "kind": MessageKind.WELCOME,
            "saga_id": saga,
            "to_address": recipient.email,
            "to_name": f"{recipient.first_name} {recipient.last_name}",
            "subject": mailer.WELCOME_SUBJECT,
            "body_text": text,
            "body_html": html,
            "smtp_message_id": mailer.new_message_id(get_settings().mail_from),
            "published_at": datetime.now(UTC),
        }
        # One welcome message per saga: a redelivered step finds the row its first run made.
        session.execute(
            insert(Message)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["saga_id", "kind"], index_where=Message.saga_id.is_not(None))
        )
        message_id = session.scalar(select(Message.id).where(Message.saga_id == saga, Message.kind == MessageKind.WELCOME))
    assert message_id is not None
    deliver(message_id)


@celery_app.task(name=TaskName.DELIVER_MESSAGE, base=MailDeliveryTask, **_MAIL_FAULTS)
def deliver_message(message_id: int) -> None:
    deliver(message_id)


# --- the account sagas ----------------------------------------------------------------------


@celery_app.task(name=TaskName.SEND_GOODBYE_EMAIL, base=StepTask, step=DeletionStep.SEND_GOODBYE_EMAIL)
def send_goodbye_email(saga_id: str, payload: dict[str, object]) -> None:
    """The deletion's first step: the goodbye mail, committed to this service's outbox.

    The step is done once the message is stored with its address (before the next steps forget
    it); delivery goes on through the outbox and ``deliver_message``, retried until the SMTP
    server takes it, so an SMTP outage does not hold the deletion up. One message per saga.
    """
    user = DeletionPayload.model_validate(payload)
    saga = uuid.UUID(saga_id)
    with sessions().begin() as session:
        failpoint(DeletionStep.SEND_GOODBYE_EMAIL, user.email)
        text, html = mailer.render_goodbye(user.first_name, user.email, user.restore_until)
        values = {
            "user_id": user.user_id,
            "kind": MessageKind.GOODBYE,
            "saga_id": saga,
            "to_address": user.email,
            "to_name": f"{user.first_name} {user.last_name}",
            "subject": mailer.GOODBYE_SUBJECT,
            "body_text": text,
            "body_html": html,
            "smtp_message_id": mailer.new_message_id(get_settings().mail_from),
        }
        session.execute(
            insert(Message)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["saga_id", "kind"], index_where=Message.saga_id.is_not(None))
        )
        message_id = session.scalar(select(Message.id).where(Message.saga_id == saga, Message.kind == MessageKind.GOODBYE))
    publish_pending(sessions(), celery_app, message_id=message_id)  # if this fails, the relay publishes it


@celery_app.task(name=TaskName.ERASE_ADDRESS, base=StepTask, step=DeletionStep.ERASE_ADDRESS)
def erase_address(saga_id: str, payload: dict[str, object]) -> None:
    """Forget the user's address: no mail can be sent to a deleted account."""
    user = DeletionPayload.model_validate(payload)
    with sessions().begin() as session:
        if not claim_step(session, SagaStepLog, uuid.UUID(saga_id), DeletionStep.ERASE_ADDRESS):
            return
        failpoint(DeletionStep.ERASE_ADDRESS, user.email)
        session.execute(delete(Recipient).where(Recipient.user_id == user.user_id))


@celery_app.task(name=TaskName.UNDO_ERASE_ADDRESS, base=PersistentTask)
def undo_erase_address(saga_id: str, payload: dict[str, object]) -> None:
    user = DeletionPayload.model_validate(payload)
    with sessions().begin() as session:
        if compensate_step(session, SagaStepLog, uuid.UUID(saga_id), DeletionStep.ERASE_ADDRESS):
            _remember(session, user, uuid.UUID(saga_id))


@celery_app.task(name=TaskName.RECALL_ADDRESS, base=StepTask, step=RestoreStep.RECALL_ADDRESS)
def recall_address(saga_id: str, payload: dict[str, object]) -> None:
    """A restored account's address, learnt again from the users service."""
    user = _recipient(payload)
    with sessions().begin() as session:
        if not claim_step(session, SagaStepLog, uuid.UUID(saga_id), RestoreStep.RECALL_ADDRESS):
            return
        failpoint(RestoreStep.RECALL_ADDRESS, user.email)
        _remember(session, user, uuid.UUID(saga_id))


@celery_app.task(name=TaskName.UNDO_RECALL_ADDRESS, base=PersistentTask)
def undo_recall_address(saga_id: str, payload: dict[str, object]) -> None:
    user = RegistrationPayload.model_validate(payload)
    saga = uuid.UUID(saga_id)
    with sessions().begin() as session:
        if compensate_step(session, SagaStepLog, saga, RestoreStep.RECALL_ADDRESS):
            session.execute(delete(Recipient).where(Recipient.user_id == user.user_id, Recipient.saga_id == saga))


@celery_app.task(name=TaskName.PURGE_ADDRESS, base=PersistentTask, step=PurgeStep.PURGE_ADDRESS)
def purge_address(saga_id: str, payload: dict[str, object]) -> None:
    """The restore period ended: the address and every message to the user go for good."""
    user = PurgePayload.model_validate(payload)
    with sessions().begin() as session:
        session.execute(delete(Recipient).where(Recipient.user_id == user.user_id))
        session.execute(delete(Message).where(Message.user_id == user.user_id))


def _recipient(payload: dict[str, object]) -> RecipientRecord:
    """The user a registration or restore brings; an address no mail can be written to is refused.

    The refusal (a ValidationError) is permanent: the step fails and the saga is compensated.
    """
    return RecipientRecord.model_validate(RegistrationPayload.model_validate(payload).model_dump())


def _remember(session: Session, user: RegistrationPayload | RecipientRecord, saga: uuid.UUID) -> None:
    values = {"user_id": user.user_id, "email": user.email, "first_name": user.first_name, "last_name": user.last_name, "saga_id": saga}
    session.execute(insert(Recipient).values(**values).on_conflict_do_update(index_elements=[Recipient.user_id], set_=values))


def deliver(message_id: int) -> None:
    """Send a queued message once; the row lock makes concurrent deliveries wait, then skip.

    A permanent failure (the message cannot be composed, or the server refuses it for good) is
    recorded as ``failed`` with the reason and raised, so the task fails without a retry.
    """
    settings = get_settings()
    error: Exception | None = None
    with sessions().begin() as session:
        message = session.get(Message, message_id, with_for_update=True)
        if message is not None and message.status == DeliveryStatus.FAILED:
            # Delivered again (the welcome step re-driven): the step fails again, never reports "done".
            raise mailer.PermanentDeliveryError(f"failed before: {message.last_error}")
        if message is None or message.status != DeliveryStatus.QUEUED:
            return
        message.attempts += 1
        try:
            composed = mailer.compose(
                sender=settings.mail_from,
                to_address=message.to_address,
                to_name=message.to_name,
                subject=message.subject,
                text=message.body_text,
                html=message.body_html,
                message_id=message.smtp_message_id or mailer.new_message_id(settings.mail_from),
            )
            mailer.send(settings, composed)
        except mailer.TransientDeliveryError as exc:
            message.last_error, error = str(exc), exc
        except mailer.PermanentDeliveryError as exc:  # also a message that cannot be composed: never sendable
            message.status, message.last_error, error = DeliveryStatus.FAILED, str(exc), exc
            log.warning("message %s (%s) to user %s failed for good: %s", message.id, message.kind, message.user_id, exc)
        else:
            message.status, message.sent_at, message.last_error = DeliveryStatus.SENT, datetime.now(UTC), None
            log.info("message %s (%s) sent to user %s", message.id, message.kind, message.user_id)
    if error is not None:  # raised after the commit, so the attempt and its error are recorded
        raise error
