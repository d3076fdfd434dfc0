import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, DateTime, Identity, Index, Integer, MetaData, String, Text, Uuid, func, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from saga import NAMING_CONVENTION, StepLedgerMixin


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class MessageKind(StrEnum):
    WELCOME = "welcome"
    GOODBYE = "goodbye"
    CUSTOM = "custom"


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class Recipient(Base):
    """A user's address, learnt from the registration saga; forgotten when the account is deleted."""

    __tablename__ = "recipient"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    email: Mapped[str] = mapped_column(String(320))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    saga_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Message(Base):
    __tablename__ = "message"
    __table_args__ = (
        # One welcome (or goodbye) mail per saga, however often its step is delivered.
        Index("uq_message_saga_id_kind", "saga_id", "kind", unique=True, postgresql_where=text("saga_id IS NOT NULL")),
        Index("ix_message_unpublished", "id", postgresql_where=text("published_at IS NULL")),
        # The retention job finds sent and failed mail by age.
        Index("ix_message_settled_created_at", "created_at", postgresql_where=text("status IN ('sent', 'failed')")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    saga_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    to_address: Mapped[str] = mapped_column(String(320))
    to_name: Mapped[str] = mapped_column(String(201))
    subject: Mapped[str] = mapped_column(String(200))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    smtp_message_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SagaStepLog(StepLedgerMixin, Base):
    """Which saga steps this service performed or compensated (its idempotency ledger)."""

    __tablename__ = "saga_step_log"
