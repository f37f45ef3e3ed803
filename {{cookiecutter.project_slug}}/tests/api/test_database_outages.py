"""The service survives the database going away: at start-up and in the middle of a run."""

import logging

import pytest
from pydantic import SecretStr

from {{ cookiecutter.package_name }}.api import create_app
from {{ cookiecutter.package_name }}.localpg.cache import MIGRATED_DATABASE
from {{ cookiecutter.package_name }}.localpg.cluster import APP_ROLE, Cluster
from {{ cookiecutter.package_name }}.settings import Settings
from tests.api.conftest import client_for
from tests.faults import SECRET, UNREACHABLE_URL, one_connection_settings


async def test_starts_while_the_database_is_down_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(database_url=SecretStr(UNREACHABLE_URL))
    with caplog.at_level(logging.WARNING):
        async with client_for(create_app(settings)) as client:
            assert (await client.get("/health/ready")).status_code == 503
            assert (await client.get("/health/live")).status_code == 200
    assert "is unreachable" in caplog.text
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
