"""Settings: URL normalisation, secrecy of the password, and pool knobs."""

import pytest
from pydantic import SecretStr, ValidationError

from {{ cookiecutter.package_name }}.db.database import Database
from {{ cookiecutter.package_name }}.db.engine import (
    create_async_engine_from_settings,
    create_sync_engine_from_settings,
)
from {{ cookiecutter.package_name }}.settings import InvalidSettings, Settings, get_settings

PASSWORD = "s3cret-Pa55"


def settings_for(url: str, **knobs: object) -> Settings:
    return Settings.model_validate({"database_url": url, **knobs})


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://app:{PASSWORD}@db.internal:5432/app",
        f"postgres://app:{PASSWORD}@db.internal:5432/app",
        f"postgresql+asyncpg://app:{PASSWORD}@db.internal:5432/app",
        f"postgresql+psycopg://app:{PASSWORD}@db.internal:5432/app",
        f"postgresql+psycopg2://app:{PASSWORD}@db.internal:5432/app",
    ],
    ids=["postgresql", "postgres", "asyncpg", "psycopg", "psycopg2"],
)
def test_any_postgres_url_gives_both_drivers(url: str) -> None:
    settings = settings_for(url)
    for driver in ("asyncpg", "psycopg"):
        normalised = settings.url(driver)
        assert normalised.drivername == f"postgresql+{driver}"
        assert (normalised.host, normalised.port, normalised.database) == (
            "db.internal",
            5432,
            "app",
        )
        assert normalised.password == PASSWORD


def test_password_never_shown() -> None:
    settings = settings_for(f"postgresql://app:{PASSWORD}@db.internal/app")
    shown = [repr(settings), str(settings), settings.safe_url, repr(settings.url())]
    assert all(PASSWORD not in text for text in shown)
    assert "db.internal" in settings.safe_url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"mysql://app:{PASSWORD}@db.internal/app", "must be a PostgreSQL URL"),
        (f"not a url {PASSWORD}", "not a valid URL"),
    ],
    ids=["other-database", "garbage"],
)
def test_bad_url_is_rejected_without_echoing_it(url: str, message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        settings_for(url)
    assert message in str(raised.value)
    assert PASSWORD not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"postgres://app:{PASSWORD}@db:6432/app", "postgres://app:***@db:6432/app"),
        (f"postgresql://app:p%40{PASSWORD}@db/app", "postgresql://app:***@db/app"),
        (
            f"postgresql://app@db/app?sslmode=require&password={PASSWORD}",
            "postgresql://app@db/app?sslmode=require&password=***",
        ),
        ("postgresql+asyncpg://app@/app?host=/run/pg",) * 2,
    ],
    ids=["in-user-part", "percent-encoded", "in-query", "none"],
)
def test_the_url_is_shown_as_written_but_the_password(url: str, shown: str) -> None:
    assert settings_for(url).safe_url == shown


def test_each_bad_setting_is_named_by_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"mysql://app:{PASSWORD}@db.internal/app")
    monkeypatch.setenv("LOG_FORMAT", "xml")
    monkeypatch.setenv("DB_POOL_RECYCLE", "-5")
    get_settings.cache_clear()
    try:
        with pytest.raises(InvalidSettings) as raised:
            get_settings()
    finally:
        get_settings.cache_clear()
    assert raised.value.problems == [
        "LOG_FORMAT is not valid: input should be 'text' or 'json'",
        "DB_POOL_RECYCLE is not valid: input should be greater than or equal to -1",
        "DATABASE_URL must be a PostgreSQL URL such as postgresql://user:password@host:5432/"
        "dbname, not a 'mysql' URL",
    ]
    assert PASSWORD not in str(raised.value)


def test_missing_url_says_how_to_fix_it() -> None:
    settings = Settings(database_url=None)
    with pytest.raises(RuntimeError, match="DATABASE_URL is not set"):
        settings.url()


def test_database_url_read_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgres://app:{PASSWORD}@env.host/app")
    monkeypatch.setenv("DB_POOL_SIZE", "7")
    settings = Settings()
    assert settings.url().host == "env.host"
    assert settings.pool_size == 7


async def test_pool_knobs_reach_both_engines() -> None:
    settings = settings_for(
        "postgresql://app@db.internal/app",
        pool_size=3,
        max_overflow=2,
        pool_timeout=1.5,
        pool_recycle=60,
        pool_pre_ping=True,
        echo=True,
    )
    async_engine = create_async_engine_from_settings(settings)
    sync_engine = create_sync_engine_from_settings(settings)
    try:
        for engine in (async_engine.sync_engine, sync_engine):
            pool = engine.pool
            assert pool.size() == 3  # type: ignore[attr-defined]
            assert pool._max_overflow == 2  # type: ignore[attr-defined]
            assert pool._timeout == 1.5  # type: ignore[attr-defined]
            assert pool._recycle == 60
            assert pool._pre_ping is True
            assert engine.echo is True
        assert async_engine.url.drivername == "postgresql+asyncpg"
        assert sync_engine.url.drivername == "postgresql+psycopg"
    finally:
        await async_engine.dispose()
        sync_engine.dispose()


def test_secret_given_directly_is_accepted() -> None:
    settings = Settings(database_url=SecretStr("postgresql://app@localhost/app"))
    assert settings.url().database == "app"


def test_replica_urls_are_a_comma_separated_list_of_any_postgres_spelling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "DATABASE_REPLICA_URLS",
        f" postgres://app:{PASSWORD}@replica-1/app, postgresql+psycopg://app@replica-2:6432/app,",
    )
    # The constructor reads the environment (model_validate does not).
    settings = Settings(database_url=SecretStr("postgresql://app@primary/app"))
    assert [(url.drivername, url.host, url.port) for url in settings.replica_urls()] == [
        ("postgresql+asyncpg", "replica-1", None),
        ("postgresql+asyncpg", "replica-2", 6432),
    ]
    assert settings.replica_urls()[0].password == PASSWORD
    assert PASSWORD not in repr(settings)


def test_no_replica_urls_means_no_replicas() -> None:
    assert settings_for("postgresql://app@primary/app").replica_urls() == []
    empty = settings_for("postgresql://app@primary/app", database_replica_urls="")
    assert empty.replica_urls() == []


def test_a_bad_replica_url_is_named_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as raised:
        settings_for(
            "postgresql://app@primary/app",
            database_replica_urls=f"postgresql://app@r1/app,mysql://app:{PASSWORD}@r2/app",
        )
    message = str(raised.value)
    assert "DATABASE_REPLICA_URLS (URL 2) must be a PostgreSQL URL" in message
    assert PASSWORD not in message


def test_replicas_without_a_primary_are_refused() -> None:
    with pytest.raises(ValidationError, match="DATABASE_REPLICA_URLS needs DATABASE_URL"):
        Settings(database_url=None, database_replica_urls=SecretStr("postgresql://app@replica/app"))


def test_replica_passwords_are_masked_where_replicas_are_named() -> None:
    settings = settings_for(
        "postgresql://app@primary/app",
        database_replica_urls=f"postgresql://app:{PASSWORD}@replica/app",
    )
    database = Database.from_settings(settings)
    assert database.replicas is not None
    [replica] = database.replicas.replicas
    assert PASSWORD not in replica.name
    assert "replica" in replica.name


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"postgresql://app:{PASSWORD}@x@db/app", "percent-encode an @"),
        ("postgresql://app@db:notaport/app", "is not a valid URL"),
    ],
    ids=["unencoded-at", "port"],
)
def test_a_url_that_would_split_wrongly_is_refused(url: str, message: str) -> None:
    for setting in ("database_url", "database_replica_urls"):
        with pytest.raises(ValidationError, match=message) as raised:
            settings_for("postgresql://app@primary/app", **{setting: url})
        assert PASSWORD not in str(raised.value)


def test_two_roles_migrate_as_the_owner_and_grant_to_the_service() -> None:
    settings = settings_for(
        "postgresql://app@db.internal/app",
        migration_url=f"postgres://owner:{PASSWORD}@db.internal/app",
    )
    assert settings.url().username == "app"
    migration_url = settings.migration_url_for()
    assert (migration_url.drivername, migration_url.username) == ("postgresql+psycopg", "owner")
    assert migration_url.password == PASSWORD
    assert settings.granted_role() == "app"
    assert PASSWORD not in repr(settings)


def test_one_role_grants_nothing_unless_db_app_role_names_one() -> None:
    one_role = settings_for("postgresql://app@db.internal/app")
    assert one_role.migration_url_for() == one_role.url("psycopg")
    assert one_role.granted_role() is None
    same_role = settings_for(
        "postgresql://app@db.internal/app",
        migration_url="postgresql://app@db.internal/app",
    )
    assert same_role.granted_role() is None
    named = settings_for("postgresql://app@db.internal/app", app_role="reporting")
    assert named.granted_role() == "reporting"
    assert settings_for("postgresql://app@db.internal/app", app_role=" ").granted_role() is None


def test_a_migration_url_needs_the_service_url() -> None:
    with pytest.raises(ValidationError, match="DATABASE_MIGRATION_URL needs DATABASE_URL"):
        Settings(database_url=None, migration_url=SecretStr("postgresql://o@db/app"))


def test_a_bad_migration_url_is_named_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as raised:
        settings_for(
            "postgresql://app@db.internal/app",
            migration_url=f"mysql://owner:{PASSWORD}@db.internal/app",
        )
    assert "DATABASE_MIGRATION_URL must be a PostgreSQL URL" in str(raised.value)
    assert PASSWORD not in str(raised.value)
