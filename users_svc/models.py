import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Identity, Index, Integer, MetaData, String, Text, Uuid, func, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
    WELCOME = "welcome"  # publish the post-pivot welcome step again


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
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean)
    password_hash: Mapped[str] = mapped_column(String(255))
    registration_status: Mapped[str] = mapped_column(String(16), default=RegistrationStatus.PENDING)
    created_at: Mapped[datetime] = _timestamp()
    updated_at: Mapped[datetime] = _timestamp(onupdate=func.now())


class RegistrationSaga(Base):
    __tablename__ = "registration_saga"
    __table_args__ = (Index("ix_registration_saga_unfinished", "progressed_at", postgresql_where=text("finished_at IS NULL")),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True, unique=True)
    status: Mapped[str] = mapped_column(String(16), default=SagaStatus.RUNNING)
    failed_step: Mapped[str | None] = mapped_column(String(64))
    redrive_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = _timestamp()
    updated_at: Mapped[datetime] = _timestamp(onupdate=func.now())
    # Last time anything happened to the saga; the watchdog re-drives it when this gets old.
    progressed_at: Mapped[datetime] = _timestamp()
    # Set once nothing more will happen: failed, or completed and the welcome step settled.
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SagaStep(Base):
    __tablename__ = "saga_step"

    saga_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registration_saga.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=StepStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = _timestamp(onupdate=func.now())


class OutboxMessage(Base):
    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_message_unpublished", "id", postgresql_where=text("published_at IS NULL")),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    saga_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registration_saga.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default=OutboxKind.START)
    created_at: Mapped[datetime] = _timestamp()
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
