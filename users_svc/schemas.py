import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, WithJsonSchema

from saga import Storable

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), Storable]
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
    password: Annotated[str, Field(min_length=1, max_length=1024), Storable]


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    first_name: str
    last_name: str
    active: bool
    registration_status: str
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


class ErrorOut(BaseModel):
    detail: str
