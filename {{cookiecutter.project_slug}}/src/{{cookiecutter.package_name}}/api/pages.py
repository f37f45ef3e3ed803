"""Keyset pages for list endpoints: one set of query parameters, one response shape.

A page holds up to `limit` items in key order and the key to pass as `after`
for the next page, or null on the last one, so clients page without offsets.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated{% if cookiecutter.python_version == "3.11" %}, Generic, TypeVar{% endif %}

from fastapi import Depends
from pydantic import BaseModel, Field

from {{ cookiecutter.package_name }}.api.bodies import Keyed
from {{ cookiecutter.package_name }}.api.fields import ApiKey, BodyKey, IntegerText
from {{ cookiecutter.package_name }}.repositories.base import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

# ?limit=, its bounds before IntegerText, or they vanish from the schema (api/fields.py).
PageLimit = Annotated[int, Field(strict=True, ge=1, le=MAX_PAGE_SIZE), IntegerText]


@dataclass(frozen=True)
class PageParams:
    """The query parameters of every list endpoint: how many items, after which key."""

    limit: PageLimit = DEFAULT_PAGE_SIZE
    after: ApiKey | None = None


# A list route that takes `page: PageParamsDep` has ?limit= and ?after=.
PageParamsDep = Annotated[PageParams, Depends()]


{% if cookiecutter.python_version == "3.11" -%}
ItemT = TypeVar("ItemT", bound=Keyed)


class Page(BaseModel, Generic[ItemT]):
{%- else -%}
class Page[ItemT: Keyed](BaseModel):
{%- endif %}
    items: list[ItemT]
    next_after: BodyKey | None = Field(
        description="Pass as `after` to get the next page; null on the last page."
    )


def page_of{% if cookiecutter.python_version != "3.11" %}[ItemT: Keyed]{% endif %}(rows: Iterable[object], limit: int, read: type[ItemT]) -> Page[ItemT]:
    """The page of `rows`, fetched with `limit`: a full page may have more after it."""
    items = [read.model_validate(row) for row in rows]
    next_after = items[-1].id if len(items) == limit else None
    return Page[ItemT](items=items, next_after=next_after)
