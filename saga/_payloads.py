"""Payloads that cross service boundaries (serialised as JSON by Celery)."""

from pydantic import BaseModel, ConfigDict


class RegistrationPayload(BaseModel):
    """What the downstream services learn about a newly registered user."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: int
    email: str
    first_name: str
    last_name: str
