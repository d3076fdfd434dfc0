from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Strict: a JSON true is not the user 1, nor false the account type 0.
UserIdField = Annotated[int, Field(strict=True, ge=1, le=2**31 - 1, examples=[1])]
# IBAN-shaped (country letters, then letters and digits), deliberately without the checksum:
# the contract's example values are not checksum-valid.
Iban = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{2}[0-9A-Za-z]{2,32}$")]


class ProfileAddRequest(BaseModel):
    user_id: UserIdField
    account_type: int = Field(strict=True, ge=0, le=32767, examples=[0])
    iban: Annotated[Iban, Field(examples=["XX1111111111111111111111"])]


class ProfileOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user_id: int
    first_name: str
    last_name: str
    account_type: int | None
    iban: str | None
    subscribed: bool
    created_at: datetime
    updated_at: datetime


class SubscriptionAddRequest(BaseModel):
    user_id: UserIdField
    plan: str = Field(default="standard", min_length=1, max_length=32, pattern=r"^[a-z0-9_-]+$")


class SubscriptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    plan: str
    created_at: datetime


class ErrorOut(BaseModel):
    detail: str
