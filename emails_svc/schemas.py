from datetime import datetime
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from saga import SingleLine, Storable

from .mailer import one_line

# One line, so no header injection and nothing EmailMessage refuses (U+0085, U+2028, CR, LF...).
# SingleLine checks it with a message that says why; the pattern only documents it in the schema.
Subject = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    Field(json_schema_extra={"pattern": r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]+$"}),
    Storable,
    SingleLine,
]


class SendRequest(BaseModel):
    user_id: int = Field(strict=True, ge=1, le=2**31 - 1, examples=[1])
    subject: Subject
    body: Annotated[str, Field(min_length=1, max_length=100_000), Storable]


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    kind: str
    to_address: str
    subject: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


class ErrorOut(BaseModel):
    detail: str


def _mail_address(value: str) -> str:
    # The users service accepted it with the same library; this keeps a stored address deliverable.
    try:
        return validate_email(value, check_deliverability=False, globally_deliverable=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"not a deliverable address: {exc}") from None


def _one_line_name(value: str) -> str:
    # Names the users service accepted before it refused line breaks may still hold them: as
    # spaces they still name the person, and restoring such an account still works.
    return one_line(value)


class RecipientRecord(BaseModel):
    """A user's address and names as a saga brings them (registration, restore)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    user_id: int
    email: Annotated[str, AfterValidator(_mail_address)]
    first_name: Annotated[str, AfterValidator(_one_line_name)]
    last_name: Annotated[str, AfterValidator(_one_line_name)]
