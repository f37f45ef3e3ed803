"""Data access: one repository per aggregate on top of a small generic base."""

from {{ cookiecutter.package_name }}.repositories.base import Repository
from {{ cookiecutter.package_name }}.repositories.errors import AlreadyExists, NotFound
{%- if cookiecutter.include_example_models %}
from {{ cookiecutter.package_name }}.repositories.users import UserRepository

__all__ = ["AlreadyExists", "NotFound", "Repository", "UserRepository"]
{%- else %}

__all__ = ["AlreadyExists", "NotFound", "Repository"]
{%- endif %}
