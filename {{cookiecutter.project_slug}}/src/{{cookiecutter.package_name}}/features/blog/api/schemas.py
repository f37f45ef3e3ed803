"""Request and response bodies of the users and posts endpoints."""

import re
from datetime import datetime
from typing import Annotated

from pydantic import Field, StrictBool, model_validator
from pydantic.json_schema import SkipJsonSchema

from {{ cookiecutter.package_name }}.api.bodies import Keyed, RequestBody
from {{ cookiecutter.package_name }}.api.fields import BodyKey, DatabaseText, Timestamp
from {{ cookiecutter.package_name }}.features.blog.models import PostStatus

# A character of an address: no "@", whitespace or control character (spelled out, as
# \s means other characters to Python, ECMA-262 and Rust) and, as in all text, neither
# NUL nor a lone surrogate (api/fields.py).
ADDRESS_CHARACTER = (
    r"[^@\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000"
    r"\uFEFF\uD800-\uDFFF]"
)
EMAIL_PATTERN = rf"^{ADDRESS_CHARACTER}+@{ADDRESS_CHARACTER}+\.{ADDRESS_CHARACTER}+(?!\n)$"
# Its own pattern rules out what DatabaseText's does: a string has one pattern.
Email = Annotated[str, Field(max_length=320, pattern=re.compile(EMAIL_PATTERN))]


class UserCreate(RequestBody):
    email: Email
    name: DatabaseText = Field(min_length=1, max_length=100)


class UserUpdate(RequestBody):
    name: DatabaseText | None = Field(default=None, min_length=1, max_length=100)
    is_active: StrictBool | None = None


class UserRead(Keyed):
    email: str
    name: str
    is_active: bool
    created_at: datetime


class AuthorRead(Keyed):
    name: str


PostTitle = Annotated[DatabaseText, Field(min_length=1, max_length=200)]


class PostCreate(RequestBody):
    author_id: BodyKey
    title: PostTitle
    content: DatabaseText
    published_at: Timestamp | None = None
    status: PostStatus = PostStatus.DRAFT


class PostUpdate(RequestBody):
    # Optional, but not nullable: SkipJsonSchema keeps null out of the documented schema,
    # the validator below refuses it.
    title: PostTitle | SkipJsonSchema[None] = None
    content: DatabaseText | SkipJsonSchema[None] = None
    published_at: Timestamp | None = None
    status: PostStatus | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _only_published_at_may_be_null(self) -> "PostUpdate":
        for name in ("title", "content", "status"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class PostRead(Keyed):
    version: int = Field(description="Counts the post's changes; its ETag is this, quoted")
    title: str
    content: str
    views: int
    status: PostStatus
    published_at: datetime | None
    created_at: datetime
    author: AuthorRead
