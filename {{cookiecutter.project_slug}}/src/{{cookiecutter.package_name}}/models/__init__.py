"""Every model, imported here so that Base.metadata is complete for Alembic."""

from {{ cookiecutter.package_name }}.db.base import Base
{%- if cookiecutter.include_example_models %}
from {{ cookiecutter.package_name }}.models.account import Account, Transfer
from {{ cookiecutter.package_name }}.models.post import Post, PostStatus
from {{ cookiecutter.package_name }}.models.user import User

__all__ = ["Account", "Base", "Post", "PostStatus", "Transfer", "User"]
{%- else %}

__all__ = ["Base"]
{%- endif %}
