"""Payloads that cross service boundaries (serialised as JSON by Celery)."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class RegistrationPayload(BaseModel):
    """What the downstream services learn about a user: at registration, and again at a restore."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: int
    email: str
    first_name: str
    last_name: str


class DeletionPayload(RegistrationPayload):
    """The user whose account is being deleted, and until when it can be restored (for the goodbye mail)."""

    restore_until: datetime


class PurgePayload(BaseModel):
    """The user whose deleted account's data is to be purged for good."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: int


def user_id_of(payload: dict[str, object] | int) -> int:
    """The user a step or compensation is about, from its payload or, as queued by a release
    before the sagas were declared alike, from a bare user id (docs/architecture.md, "Deploys")."""
    if isinstance(payload, int):
        return payload
    return PurgePayload.model_validate({"user_id": payload["user_id"]}).user_id
