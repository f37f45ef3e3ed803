"""The bases of bodies: requests refuse fields they do not know; responses are a row
read from the database, its primary key first."""

from pydantic import BaseModel, ConfigDict

from {{ cookiecutter.package_name }}.api.fields import BodyKey


class RequestBody(BaseModel):
    """A request body: a field it does not know is a 422 naming it, not silently dropped
    (a misspelt or read-only field would otherwise answer 200 and change nothing)."""

    model_config = ConfigDict(extra="forbid")


class Keyed(BaseModel):
    """A response body read from a row's attributes (an ORM object), with its primary key."""

    model_config = ConfigDict(from_attributes=True)

    id: BodyKey
