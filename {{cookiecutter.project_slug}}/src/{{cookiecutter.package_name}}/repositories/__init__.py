"""Data access: a small generic base that each feature's repositories build on."""

from {{ cookiecutter.package_name }}.repositories.base import Repository
from {{ cookiecutter.package_name }}.repositories.errors import AlreadyExists, MissingReference, NotFound

__all__ = ["AlreadyExists", "MissingReference", "NotFound", "Repository"]
