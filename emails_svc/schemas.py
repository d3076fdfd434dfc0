from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from saga import Storable

# No control characters at all, so no CR/LF header injection.
Subject = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$"), Storable]


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
