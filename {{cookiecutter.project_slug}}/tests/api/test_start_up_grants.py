"""A service whose database role was never granted the tables says so as it starts, naming
the setting that fixes it, instead of failing every request."""

import logging
import uuid
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy import make_url

from {{ cookiecutter.package_name }}.api import create_app
from {{ cookiecutter.package_name }}.settings import Settings
from tests.harness.servers import AppRole, SessionDatabase


@pytest.fixture
def ungranted_role(database: SessionDatabase) -> Iterator[AppRole]:
    """A role that may log in, and nothing more."""
    role = AppRole(f"ungranted_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex)
    database.server.create_role(role.name, str(role.password))
    try:
        yield role
    finally:
        database.server.drop_role(role.name)


async def test_a_role_without_grants_is_named_with_the_fix_at_start_up(
    postgres_url: str, ungranted_role: AppRole, caplog: pytest.LogCaptureFixture
) -> None:
    url = ungranted_role.login(make_url(postgres_url))
    app = create_app(Settings(database_url=SecretStr(url.render_as_string(hide_password=False))))
    with caplog.at_level(logging.WARNING):
        async with app.router.lifespan_context(app):
            pass
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    name = ungranted_role.name
    assert errors == [
        f"the database user {name} may not read the tables: run `migrate` with "
        f"DB_APP_ROLE={name} (or DATABASE_MIGRATION_URL set to the owner's URL)"
    ]
