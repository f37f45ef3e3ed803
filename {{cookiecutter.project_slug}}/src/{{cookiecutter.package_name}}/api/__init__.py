"""The HTTP API: a FastAPI app whose requests each run in one unit of work."""

from {{ cookiecutter.package_name }}.api.app import create_app

__all__ = ["create_app"]
