"""The base of response bodies: a row read from the database, its primary key first."""

from pydantic import BaseModel, ConfigDict

from {{ cookiecutter.package_name }}.api.fields import BodyKey


class Keyed(BaseModel):
    """A response body read from a row's attributes (an ORM object), with its primary key."""

    model_config = ConfigDict(from_attributes=True)

    id: BodyKey
