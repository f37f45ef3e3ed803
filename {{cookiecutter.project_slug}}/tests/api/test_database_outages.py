"""The service survives the database going away: at start-up and in the middle of a run."""

import logging

import pytest
from pydantic import SecretStr
from sqlalchemy import make_url

from {{ cookiecutter.package_name }}.api import create_app
from {{ cookiecutter.package_name }}.localpg.cache import MIGRATED_DATABASE
from {{ cookiecutter.package_name }}.localpg.cluster import APP_ROLE, Cluster
from {{ cookiecutter.package_name }}.settings import Settings
from tests.api.conftest import assert_database_unavailable, client_for
from tests.faults import SECRET, UNREACHABLE_URL, one_connection_settings
from tests.harness.servers import AppRole, SessionDatabase


async def test_starts_while_the_database_is_down_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(database_url=SecretStr(UNREACHABLE_URL))
    with caplog.at_level(logging.WARNING):
        async with client_for(create_app(settings)) as client:
            assert (await client.get("/health/ready")).status_code == 503
            assert (await client.get("/health/live")).status_code == 200
    assert "(DATABASE_URL) is unreachable" in caplog.text
    assert "127.0.0.1" in caplog.text
    assert SECRET not in caplog.text


async def test_recovers_when_the_database_restarts(restartable_cluster: Cluster) -> None:
    settings = one_connection_settings(
        restartable_cluster.url(MIGRATED_DATABASE).set(username=APP_ROLE)
    )
    async with client_for(create_app(settings)) as client:
        assert (await client.get("/health/ready")).status_code == 200
        restartable_cluster.stop()
        assert (await client.get("/health/ready")).status_code == 503
        restartable_cluster.start()
        assert (await client.get("/health/ready")).status_code == 200


async def test_credentials_refused_mid_run_are_unavailable_not_a_bug(
    database: SessionDatabase,
    bare_role: AppRole,
    postgres_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The bare role with the service role's rights, until it may no longer log in, as
    # when a rotated password reaches the server before the service.
    with database.server.connect() as admin:
        admin.execute(f"GRANT {database.app_role.name} TO {bare_role.name}")
    settings = one_connection_settings(bare_role.login(make_url(postgres_url)))
    async with client_for(create_app(settings)) as client:
        assert (await client.get("/health/ready")).status_code == 200
        with database.server.connect() as admin:
            admin.execute(f"ALTER ROLE {bare_role.name} NOLOGIN")
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (bare_role.name,),
            )
        with caplog.at_level(logging.WARNING):
            # The pooled connection is found dead first, then a new one is refused.
            for _ in range(2):
                assert_database_unavailable(await client.get("/health/ready"))
        assert (await client.get("/health/live")).status_code == 200
    assert "the database refused the service's credentials" in caplog.text
