"""A service whose database role was never granted the tables says so as it starts, naming
the setting that fixes it, instead of failing every request."""

import logging

import pytest
from pydantic import SecretStr
from sqlalchemy import make_url

from {{ cookiecutter.package_name }}.api import create_app
from {{ cookiecutter.package_name }}.settings import Settings
from tests.harness.servers import AppRole


async def test_a_role_without_grants_is_named_with_the_fix_at_start_up(
    postgres_url: str, bare_role: AppRole, caplog: pytest.LogCaptureFixture
) -> None:
    url = bare_role.login(make_url(postgres_url))
    app = create_app(Settings(database_url=SecretStr(url.render_as_string(hide_password=False))))
    with caplog.at_level(logging.WARNING):
        async with app.router.lifespan_context(app):
            pass
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    name = bare_role.name
    assert errors == [
        f"the database user {name} may not read the tables: run `migrate` with "
        f"DB_APP_ROLE={name} (or DATABASE_MIGRATION_URL set to the owner's URL)"
    ]
