import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Identity, Index, Integer, MetaData, String, Text, Uuid, func, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from saga import SagaKind

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class RegistrationStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"


class AccountStatus(StrEnum):
    """An account's life after registration; only an active one can log in."""

    ACTIVE = "active"
    DELETING = "deleting"  # the deletion saga runs; undone to active if it fails
    DELETED = "deleted"  # restorable until purge_after
    RESTORING = "restoring"  # the restore saga runs; back to deleted if it fails
    PURGING = "purging"  # the restore period ended; the purge saga runs
    PURGED = "purged"  # personal data gone, the email free again; the row stays as a tombstone


class SagaStatus(StrEnum):
    RUNNING = "running"
    COMPENSATING = "compensating"
    COMPLETED = "completed"
    FAILED = "failed"


class StepStatus(StrEnum):
    PENDING = "pending"
    RETRYING = "retrying"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    COMPENSATED = "compensated"


class OutboxKind(StrEnum):
    START = "start"  # publish the saga's chain (again, when re-driven)
    COMPENSATE = "compensate"  # publish the compensation chain again
    AFTER_PIVOT = "welcome"  # publish the steps after the pivot again (its value from when the welcome mail was the only one)


def _timestamp(**kw: object) -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), **kw)  # type: ignore[arg-type]


class UserAccount(Base):
    __tablename__ = "user_account"
    __table_args__ = (
        # A failed registration frees its email for a new attempt.
        Index(
            "uq_user_account_email_live",
            func.lower(text("email")),
            unique=True,
            postgresql_where=text("registration_status <> 'failed'"),
        ),
        # Login and restore find any account by its email, failed registrations included.
        Index("ix_user_account_email_lower", func.lower(text("email"))),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean)
    password_hash: Mapped[str] = mapped_column(String(255))
    registration_status: Mapped[str] = mapped_column(String(16), default=RegistrationStatus.PENDING)
    # Not the contract's `active` (a value the client gives at registration): the account's lifecycle.
    account_status: Mapped[str] = mapped_column(String(16), default=AccountStatus.ACTIVE)
    # Set when a deletion is asked for, cleared when it fails or the account is restored.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The end of the restore period: then the purge saga removes the data for good.
    purge_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Operators may read every saga and act on it (python -m users_svc.operators grant <email>).
    is_operator: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = _timestamp()
    updated_at: Mapped[datetime] = _timestamp(onupdate=func.now())


# What a purged account keeps in place of its email: unique per row, and never a registrable
# address (the .invalid top-level domain is reserved and refused by registration's validation).
def purged_email(user_id: int) -> str:
    return f"purged-{user_id}@purged.invalid"


Index(
    "ix_user_account_purge_after",
    UserAccount.purge_after,
    postgresql_where=text(f"account_status = '{AccountStatus.DELETED}'"),
)


class Saga(Base):
    """A saga the users service orchestrates: its state, whatever its kind (one table, one row per saga)."""

    __tablename__ = "saga"
    __table_args__ = (
        Index("ix_saga_unfinished", "progressed_at", postgresql_where=text("finished_at IS NULL")),
        # One registration per user; and at most one account saga in flight per user at a time.
        Index("uq_saga_user_id_registration", "user_id", unique=True, postgresql_where=text(f"kind = '{SagaKind.REGISTRATION}'")),
        Index(
            "uq_saga_user_id_in_flight",
            "user_id",
            unique=True,
            postgresql_where=text(f"kind <> '{SagaKind.REGISTRATION}' AND finished_at IS NULL"),
        ),
        # The operators' search (GET /v1/sagas): newest first, by kind, by status, needing attention.
        Index("ix_saga_created_at_id", text("created_at DESC"), text("id DESC")),
        Index("ix_saga_kind_created_at_id", "kind", text("created_at DESC"), text("id DESC")),
        Index("ix_saga_status_created_at_id", "status", text("created_at DESC"), text("id DESC")),
        Index("ix_saga_attention_created_at_id", text("created_at DESC"), text("id DESC"), postgresql_where=text("needs_attention")),
    )
    __mapper_args__ = {"polymorphic_on": "kind"}  # noqa: RUF012  # SQLAlchemy's declarative attribute

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=SagaStatus.RUNNING)
    failed_step: Mapped[str | None] = mapped_column(String(64))
    redrive_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = _timestamp()
    updated_at: Mapped[datetime] = _timestamp(onupdate=func.now())
    # Last time anything happened to the saga; the watchdog re-drives it when this gets old.
    progressed_at: Mapped[datetime] = _timestamp()
    # Set once nothing more will happen: failed, or completed and the welcome step settled.
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set by an operator or by the watchdog (a compensation that keeps failing); cleared by an operator.
    needs_attention: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    attention_note: Mapped[str | None] = mapped_column(Text)


# One class per kind (single-table inheritance): a query for RegistrationSaga finds registrations only.
class RegistrationSaga(Saga):
    __mapper_args__ = {"polymorphic_identity": SagaKind.REGISTRATION.value}  # noqa: RUF012


class DeletionSaga(Saga):
    __mapper_args__ = {"polymorphic_identity": SagaKind.DELETION.value}  # noqa: RUF012


class RestoreSaga(Saga):
    __mapper_args__ = {"polymorphic_identity": SagaKind.RESTORE.value}  # noqa: RUF012


class PurgeSaga(Saga):
    __mapper_args__ = {"polymorphic_identity": SagaKind.PURGE.value}  # noqa: RUF012


SAGA_CLASSES: dict[str, type[Saga]] = {cls.__mapper_args__["polymorphic_identity"]: cls for cls in Saga.__subclasses__()}


class SagaStep(Base):
    __tablename__ = "saga_step"

    saga_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("saga.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=StepStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = _timestamp(onupdate=func.now())


class SagaEventType(StrEnum):
    SAGA_STARTED = "saga_started"
    STEP_QUEUED = "step_queued"
    STEP_STARTED = "step_started"
    STEP_RETRIED = "step_retried"
    STEP_DONE = "step_done"
    STEP_FAILED = "step_failed"
    COMPENSATION_QUEUED = "compensation_queued"
    COMPENSATION_STARTED = "compensation_started"
    COMPENSATION_RETRIED = "compensation_retried"
    COMPENSATION_DONE = "compensation_done"
    COMPENSATION_FAILED = "compensation_failed"
    PIVOT_PASSED = "pivot_passed"
    REDRIVEN = "redriven"
    SAGA_COMPLETED = "saga_completed"
    SAGA_FAILED = "saga_failed"
    ATTENTION_MARKED = "attention_marked"
    ATTENTION_CLEARED = "attention_cleared"


class SagaEvent(Base):
    """The saga's history, append-only: written in the transaction that moves the state it describes.

    A redelivered message writes nothing twice: an event is unique per (saga, type, step, attempt,
    round); events that may repeat within a round (operator actions) number themselves in ``attempt``.
    """

    __tablename__ = "saga_event"
    __table_args__ = (
        Index(
            "uq_saga_event_once",
            "saga_id",
            "type",
            func.coalesce(text("step"), text("''")),
            func.coalesce(text("attempt"), text("0")),
            "round",
            unique=True,
        ),  # also finds a saga's events (its first column): a saga has a few dozen, sorted in memory
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    saga_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("saga.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    type: Mapped[str] = mapped_column(String(32))
    step: Mapped[str | None] = mapped_column(String(64))
    attempt: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(320))  # "watchdog", or the operator's email
    detail: Mapped[str | None] = mapped_column(Text)
    # The saga's re-drive count when written: a step run again after a re-drive is a new event,
    # the same message delivered twice is not.
    round: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class OutboxMessage(Base):
    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_message_unpublished", "id", postgresql_where=text("published_at IS NULL")),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    saga_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("saga.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default=OutboxKind.START)
    created_at: Mapped[datetime] = _timestamp()
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
