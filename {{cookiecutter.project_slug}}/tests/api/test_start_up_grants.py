"""A service whose database role was never granted the tables says so as it starts, naming
the setting that fixes it, instead of failing every request."""

import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy import make_url

from {{ cookiecutter.package_name }}.api import create_app
from {{ cookiecutter.package_name }}.settings import Settings
from tests.harness.servers import SessionDatabase
from tests.roles import temporary_role


@pytest.fixture
def ungranted_role(database: SessionDatabase, postgres_url: str) -> Iterator[str]:
    """A role that may log in, as over the harness's socket any role may, and nothing more."""
    if database.cluster is None:
        pytest.skip(
            "needs the harness's own cluster: a new role on TEST_DATABASE_URL's server "
            "would need a password"
        )
    with temporary_role(make_url(postgres_url), "ungranted", "LOGIN") as role:
        yield role


@pytest.mark.isolated_db
async def test_a_role_without_grants_is_named_with_the_fix_at_start_up(
    postgres_url: str, ungranted_role: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = make_url(postgres_url).set(username=ungranted_role)
    app = create_app(Settings(database_url=SecretStr(url.render_as_string(hide_password=False))))
    with caplog.at_level(logging.WARNING):
        async with app.router.lifespan_context(app):
            pass
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [
        f"the database user {ungranted_role} may not read the tables: run `migrate` with "
        f"DB_APP_ROLE={ungranted_role} (or DATABASE_MIGRATION_URL set to the owner's URL)"
    ]
