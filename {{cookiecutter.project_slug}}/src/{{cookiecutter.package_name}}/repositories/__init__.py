"""Data access: one repository per aggregate on top of a small generic base."""

{% if cookiecutter.include_example_models -%}
from {{ cookiecutter.package_name }}.repositories.accounts import AccountRepository, TransferRepository
{% endif -%}
from {{ cookiecutter.package_name }}.repositories.base import Repository
from {{ cookiecutter.package_name }}.repositories.errors import AlreadyExists, MissingReference, NotFound
{%- if cookiecutter.include_example_models %}
from {{ cookiecutter.package_name }}.repositories.posts import PostRepository
from {{ cookiecutter.package_name }}.repositories.users import UserRepository

__all__ = [
    "AccountRepository",
    "AlreadyExists",
    "MissingReference",
    "NotFound",
    "PostRepository",
    "Repository",
    "TransferRepository",
    "UserRepository",
]
{%- else %}

__all__ = ["AlreadyExists", "MissingReference", "NotFound", "Repository"]
{%- endif %}
