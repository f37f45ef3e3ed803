"""Request and response bodies for the example endpoints."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def _without_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\x00) characters")
    return value


# PostgreSQL text cannot store NUL: reject it as invalid input, not as a database error.
DatabaseText = Annotated[str, AfterValidator(_without_nul)]


class UserCreate(BaseModel):
    email: DatabaseText = Field(max_length=320, pattern=EMAIL_PATTERN)
    name: DatabaseText = Field(min_length=1, max_length=100)


class UserUpdate(BaseModel):
    name: DatabaseText | None = Field(default=None, min_length=1, max_length=100)
    is_active: bool | None = None


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    is_active: bool
    created_at: datetime


class UserPage(BaseModel):
    items: list[UserRead]
    # Pass as `after` to get the next page; null on the last page.
    next_after: int | None
