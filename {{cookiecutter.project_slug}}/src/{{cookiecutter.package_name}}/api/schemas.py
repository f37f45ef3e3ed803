"""Request and response bodies for the example endpoints.

Each field says in the OpenAPI document what it accepts: a key within its column's
range, money as whole minor units, null only where null is accepted.
"""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from {{ cookiecutter.package_name }}.api.fields import BIGINT_MAX, ApiKey
from {{ cookiecutter.package_name }}.api.pages import Keyed
from {{ cookiecutter.package_name }}.models import PostStatus

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def _without_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\x00) characters")
    return value


# PostgreSQL text cannot store NUL: reject it as invalid input, not as a database error.
DatabaseText = Annotated[str, AfterValidator(_without_nul)]
# Whole minor units (cents) in a bigint column. Strict: true, "12" or 12.0 are refused
# rather than read as 1 or 12, since a misread amount of money is worse than a 422.
Money = Annotated[int, Field(strict=True, ge=0, le=BIGINT_MAX)]


class UserCreate(BaseModel):
    email: DatabaseText = Field(max_length=320, pattern=EMAIL_PATTERN)
    name: DatabaseText = Field(min_length=1, max_length=100)


class UserUpdate(BaseModel):
    name: DatabaseText | None = Field(default=None, min_length=1, max_length=100)
    is_active: bool | None = None


class UserRead(Keyed):
    model_config = ConfigDict(from_attributes=True)

    email: str
    name: str
    is_active: bool
    created_at: datetime


class AuthorRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: ApiKey
    name: str


PostTitle = Annotated[DatabaseText, Field(min_length=1, max_length=200)]


class PostCreate(BaseModel):
    author_id: ApiKey
    title: PostTitle
    content: DatabaseText
    published_at: datetime | None = None
    status: PostStatus = PostStatus.DRAFT


class PostUpdate(BaseModel):
    # Optional, but not nullable: SkipJsonSchema keeps null out of the documented schema,
    # the validator below refuses it.
    title: PostTitle | SkipJsonSchema[None] = None
    content: DatabaseText | SkipJsonSchema[None] = None
    published_at: datetime | None = None
    status: PostStatus | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _only_published_at_may_be_null(self) -> "PostUpdate":
        for name in ("title", "content", "status"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class PostRead(Keyed):
    model_config = ConfigDict(from_attributes=True)

    title: str
    content: str
    views: int
    status: PostStatus
    published_at: datetime | None
    created_at: datetime
    author: AuthorRead


class AccountCreate(BaseModel):
    name: DatabaseText = Field(min_length=1, max_length=100)
    balance: Money = 0


class AccountRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: ApiKey
    name: str
    balance: int


class TransferCreate(BaseModel):
    source_id: ApiKey
    target_id: ApiKey
    amount: Annotated[Money, Field(gt=0)]

    @model_validator(mode="after")
    def _distinct_accounts(self) -> "TransferCreate":
        if self.source_id == self.target_id:
            raise ValueError("source_id and target_id must be different accounts")
        return self


class TransferRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: ApiKey
    source_id: ApiKey
    target_id: ApiKey
    amount: int
    created_at: datetime
