import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, WithJsonSchema, model_validator

from saga import SingleLine, Storable

# A name goes into the To header of every mail to the user: one line.
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), Storable, SingleLine]
Password = Annotated[str, Field(min_length=1, max_length=1024), Storable]
# Read laxly on purpose: the contract sends "False" and "True" as strings. Documented as such.
LaxBool = Annotated[
    bool,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "boolean"},
                {"type": "string", "enum": ["true", "false", "True", "False", "1", "0", "yes", "no", "on", "off"]},
                {"type": "integer", "enum": [0, 1]},
            ]
        }
    ),
]


class RegisterRequest(BaseModel):
    email: EmailStr = Field(max_length=320)
    first_name: Name
    last_name: Name
    active: LaxBool = True
    password: Password


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    first_name: str
    last_name: str
    active: bool
    registration_status: str
    account_status: str
    created_at: datetime
    saga: "SagaRef | None" = None


class SagaStepOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    step: str
    status: str
    attempts: int
    error: str | None
    updated_at: datetime


class SagaOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    user_id: int
    status: str
    failed_step: str | None
    error: str | None
    redrive_count: int
    created_at: datetime
    updated_at: datetime
    steps: list[SagaStepOut]


class SagaRef(BaseModel):
    id: uuid.UUID
    status: str
    url: str


def registration_saga_url(saga_id: uuid.UUID) -> str:
    """Where a registration's saga is polled (GET /v1/register/{saga_id})."""
    return f"/v1/register/{saga_id}"


class ErrorOut(BaseModel):
    detail: str


class LoginRequest(BaseModel):
    # Any string: whatever is wrong with it, the answer is the same 401 as for a wrong password.
    email: Annotated[str, Field(min_length=1, max_length=320), Storable]
    password: Password


class TokenOut(BaseModel):
    user_id: int
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105  # the OAuth 2 token type, not a secret
    expires_in: int = Field(description="seconds until the access token expires")


class RefreshRequest(BaseModel):
    refresh_token: Annotated[str, Field(min_length=1, max_length=4096), Storable]


class LogoutRequest(BaseModel):
    refresh_token: Annotated[str, Field(min_length=1, max_length=4096, description="the session (token family) to end"), Storable]


class MeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_name: Name | None = None
    last_name: Name | None = None
    password: Password | None = None
    current_password: Password | None = Field(default=None, description="required to change the password")

    @model_validator(mode="after")
    def _password_change_needs_the_current_one(self) -> Self:
        if self.password is not None and self.current_password is None:
            raise ValueError("current_password is required to change the password")
        return self


# What a route documents per status code besides its success (FastAPI's ``responses``).
Responses = dict[int | str, dict[str, Any]]


class SagaSummary(BaseModel):
    """A saga as the operators' search lists it."""

    id: uuid.UUID
    kind: str
    status: str
    user_id: int
    email: str
    failed_step: str | None
    error: str | None = Field(description="the failed step's last error")
    created_at: datetime
    progressed_at: datetime
    finished_at: datetime | None
    redrive_count: int
    needs_attention: bool
    attention_note: str | None
    stuck: bool = Field(description="not finished and not progressing for USERS_SAGA_STALE_AFTER_SECONDS")
    url: str = Field(description="the saga's history: GET /v1/sagas/{id}/events")


class SagaCounts(BaseModel):
    running: int = 0
    compensating: int = 0
    completed: int = 0
    failed: int = 0
    attention: int = 0
    limit: int = Field(description="counting stops here: a count equal to it means at least that many")


class SagaPage(BaseModel):
    items: list[SagaSummary]
    next_cursor: str | None = Field(description="pass as cursor for the next page; null on the last")
    counts: SagaCounts = Field(description="sagas per status (and needing attention) over the same filters, status aside")


class SagaStepState(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    step: str
    position: int
    status: str
    attempts: int
    error: str | None


class SagaEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    type: str
    step: str | None
    attempt: int | None
    error: str | None
    actor: str | None = Field(description='"watchdog", or the email of the operator who acted')
    detail: str | None


class SagaHistory(BaseModel):
    saga: SagaSummary
    steps: list[SagaStepState]
    items: list[SagaEventOut] = Field(description="the saga's events, oldest first")


class AttentionRequest(BaseModel):
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000), Storable] | None = None
