"""The service survives the database going away: at start-up and in the middle of a run."""

import logging
import uuid
from pathlib import Path

import pytest
from pydantic import SecretStr

from {{ cookiecutter.package_name }}.api import create_app
from {{ cookiecutter.package_name }}.localpg.cache import MIGRATED_DATABASE
from {{ cookiecutter.package_name }}.localpg.runs import shared_cluster
from {{ cookiecutter.package_name }}.settings import Settings
from tests.api.conftest import SECRET, client_for
from tests.harness.databases import project_migrations


async def test_starts_while_the_database_is_down_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(database_url=SecretStr(f"postgresql://app:{SECRET}@127.0.0.1:1/app"))
    with caplog.at_level(logging.WARNING):
        async with client_for(create_app(settings)) as client:
            assert (await client.get("/health/ready")).status_code == 503
            assert (await client.get("/health/live")).status_code == 200
    assert "is unreachable" in caplog.text
    assert "127.0.0.1" in caplog.text
    assert SECRET not in caplog.text


async def test_recovers_when_the_database_restarts(server_bindir: Path) -> None:
    # A cluster of this test's own: stopping the shared one would break other tests.
    with shared_cluster(
        server_bindir, f"restart-{uuid.uuid4().hex[:8]}", project_migrations()
    ) as cluster:
        url = cluster.url(MIGRATED_DATABASE).render_as_string(hide_password=False)
        # One pooled connection, so the one the restart killed is the one reused.
        settings = Settings(database_url=SecretStr(url), pool_size=1, max_overflow=0)
        async with client_for(create_app(settings)) as client:
            assert (await client.get("/health/ready")).status_code == 200
            cluster.stop()
            assert (await client.get("/health/ready")).status_code == 503
            cluster.start()
            assert (await client.get("/health/ready")).status_code == 200
