"""Request and response bodies of the users and posts endpoints."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from {{ cookiecutter.package_name }}.api.bodies import Keyed
from {{ cookiecutter.package_name }}.api.fields import ApiKey, DatabaseText
from {{ cookiecutter.package_name }}.features.blog.models import PostStatus

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class UserCreate(BaseModel):
    email: DatabaseText = Field(max_length=320, pattern=EMAIL_PATTERN)
    name: DatabaseText = Field(min_length=1, max_length=100)


class UserUpdate(BaseModel):
    name: DatabaseText | None = Field(default=None, min_length=1, max_length=100)
    is_active: bool | None = None


class UserRead(Keyed):
    email: str
    name: str
    is_active: bool
    created_at: datetime


class AuthorRead(Keyed):
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
    title: str
    content: str
    views: int
    status: PostStatus
    published_at: datetime | None
    created_at: datetime
    author: AuthorRead
