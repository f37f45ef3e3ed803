"""The users and posts endpoints."""

from fastapi import FastAPI

from {{ cookiecutter.package_name }}.features.blog.api import posts, users


def install(app: FastAPI) -> None:
    app.include_router(users.router)
    app.include_router(posts.router)
