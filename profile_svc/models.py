import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Integer, MetaData, SmallInteger, String, Uuid, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from saga import NAMING_CONVENTION, StepLedgerMixin


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Profile(Base):
    """Business data about a user; created by the registration saga, keyed by the user's id."""

    __tablename__ = "profile"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    account_type: Mapped[int | None] = mapped_column(SmallInteger)
    iban: Mapped[str | None] = mapped_column(String(34))
    saga_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # Set while the account is deleted: hidden, kept with its subscription for a restore, then purged.
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), onupdate=func.now())


class Subscription(Base):
    __tablename__ = "subscription"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("profile.user_id", ondelete="CASCADE"), unique=True)
    plan: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SagaStepLog(StepLedgerMixin, Base):
    """Which saga steps this service performed or compensated (its idempotency ledger)."""

    __tablename__ = "saga_step_log"
