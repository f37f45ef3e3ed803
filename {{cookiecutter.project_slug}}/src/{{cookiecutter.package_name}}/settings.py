"""Configuration from the environment (and an optional .env file).

Database URLs are secrets: they are only ever shown with their passwords masked.
"""

from functools import lru_cache
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from {{ cookiecutter.package_name }}.logs import LogFormat

POSTGRES_SCHEMES = frozenset(
    {"postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg", "postgresql+psycopg2"}
)
URL_EXAMPLE = "postgresql://user:password@host:5432/dbname"
# What make_url raises for text that is not a URL, and for a port that is not a number.
NOT_A_URL = (ArgumentError, ValueError)


def parse_database_url(raw: str, setting: str = "DATABASE_URL") -> URL:
    """Parse a PostgreSQL URL whatever driver it names; errors never echo the URL."""
    try:
        url = make_url(raw)
    except NOT_A_URL:
        raise ValueError(f"{setting} is not a valid URL; expected {URL_EXAMPLE}") from None
    if url.drivername not in POSTGRES_SCHEMES:
        raise ValueError(
            f"{setting} must be a PostgreSQL URL such as {URL_EXAMPLE}, "
            f"not a {url.drivername!r} URL"
        )
    # An @ in the password splits the URL in the wrong place, and the masked URL in
    # the logs would show the rest of the password.
    if "@" in (url.host or ""):
        raise ValueError(
            f"{setting} has an @ that is not the one before the host: percent-encode an @ "
            "in the user name or password as %40"
        )
    return url


def parse_replica_urls(raw: str) -> list[URL]:
    """Comma-separated PostgreSQL URLs; blanks between commas are ignored."""
    parts = [part.strip() for part in raw.split(",")]
    return [
        parse_database_url(part, f"DATABASE_REPLICA_URLS (URL {number})")
        for number, part in enumerate(parts, start=1)
        if part
    ]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_prefix="DB_",
        extra="ignore",
        validate_by_name=True,
        # Validation errors must not echo a URL that carries a password.
        hide_input_in_errors=True,
    )

    # None means "no server configured": the CLI then runs a private local cluster.
    database_url: Annotated[
        SecretStr | None, Field(validation_alias=AliasChoices("DATABASE_URL", "database_url"))
    ] = None

    # Least privilege (db/roles.py): `migrate`, `revision` and `alembic` connect with
    # this URL, the owner's, when DATABASE_URL's role may not change the schema.
    # Unset: with DATABASE_URL, whose role then owns what it migrates.
    database_migration_url: Annotated[
        SecretStr | None,
        Field(validation_alias=AliasChoices("DATABASE_MIGRATION_URL", "database_migration_url")),
    ] = None
    # DB_APP_ROLE: the role the migrations grant the service's privileges to. Unset:
    # DATABASE_URL's, when DATABASE_MIGRATION_URL connects as another role (`grantee`).
    app_role: str | None = Field(default=None, max_length=63)

    # Streaming replicas that serve read-only sessions (db/replicas/), comma-separated.
    # Unset or empty: every read runs on the primary.
    database_replica_urls: Annotated[
        SecretStr | None,
        Field(validation_alias=AliasChoices("DATABASE_REPLICA_URLS", "database_replica_urls")),
    ] = None
    # A replica further behind the primary than this serves no reads.
    replica_max_lag_ms: int = Field(default=1000, ge=0)
    # How often each process checks every replica's state and lag.
    replica_check_interval_ms: int = Field(default=250, gt=0)
    # Milliseconds a statement of a read-only session may wait for a replica, connecting
    # included, before it runs on the primary instead; the replica then serves no reads
    # until a check finds it answering. Measured here: a frozen replica cannot enforce
    # its own statement_timeout. A read that needs longer on a healthy replica also ends
    # up on the primary: raise it for slow reports.
    replica_read_timeout_ms: int = Field(default=5000, gt=0)

    # A fixed pool without overflow: overflow connections are closed on return, so
    # bursts would turn into reconnects (README, Speed). Read-only sessions have a
    # pool of the same size (db/engine.py), opened as reads need it, on the primary
    # and on each replica: budget processes x 2 x pool_size on the primary and
    # processes x (pool_size + 1) on each replica against their max_connections.
    pool_size: int = Field(default=10, ge=1)
    max_overflow: int = Field(default=0, ge=0)
    # Seconds to wait for a free connection; fail fast instead of hanging a request.
    pool_timeout: float = Field(default=5.0, gt=0)
    # Seconds after which a connection is replaced, below typical proxy idle limits.
    pool_recycle: int = Field(default=1800, ge=-1)
    # Off: a ping is a round trip on every checkout (README, Speed). The async
    # engine replaces connections the server has closed (a restart) for free at
    # checkout. Turn it on when something between the service and the server can
    # drop idle connections silently.
    pool_pre_ping: bool = False
    # Logs every statement and its parameters: for debugging only.
    echo: bool = False
    # Milliseconds a statement may run before the server cancels it (the API
    # answers 504); unset means no limit. Migrations have their own (below).
    statement_timeout_ms: int | None = Field(default=None, gt=0)
    # DATABASE_URL points at PgBouncer in transaction mode: no prepared-statement
    # caches, unnamed statements, and reads inside transactions (see db/engine.py).
    pgbouncer: bool = False
    # Migrations (db/migrations.py): every migration transaction runs with these
    # timeouts, in milliseconds. A statement waiting for a table lock (ALTER TABLE
    # waits for every transaction that touched the table) blocks all later queries
    # on that table, so it gives up after the lock timeout instead, and `migrate`
    # tries the revision again, up to the given number of attempts in all.
    migration_lock_timeout_ms: int = Field(default=5000, gt=0)
    migration_statement_timeout_ms: int = Field(default=60000, gt=0)
    migration_lock_attempts: int = Field(default=3, ge=1)
    # A statement slower than this many milliseconds is logged once (0: never).
    slow_query_ms: int = Field(default=500, ge=0)
    # Prometheus metrics at /metrics (observability/metrics.py); METRICS_PORT serves
    # them on a port of their own instead, kept off the API's.
    metrics_enabled: Annotated[
        bool, Field(validation_alias=AliasChoices("METRICS_ENABLED", "metrics_enabled"))
    ] = True
    metrics_port: Annotated[
        int | None,
        Field(validation_alias=AliasChoices("METRICS_PORT", "metrics_port"), ge=1, le=65535),
    ] = None
    # LOG_FORMAT=json: one JSON object per log line, for log shippers (see logs.py).
    log_format: Annotated[
        LogFormat, Field(validation_alias=AliasChoices("LOG_FORMAT", "log_format"))
    ] = "text"

    @model_validator(mode="after")
    def _timeout_needs_startup_parameters(self) -> "Settings":
        if self.pgbouncer and self.statement_timeout_ms is not None:
            raise ValueError(
                "DB_STATEMENT_TIMEOUT_MS cannot be used with DB_PGBOUNCER: PgBouncer refuses "
                "it as a connection parameter. Set it on the role instead: "
                "ALTER ROLE <user> SET statement_timeout = '<ms>ms'"
            )
        return self

    @field_validator("database_url")
    @classmethod
    def _must_be_postgres(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_database_url(value.get_secret_value())
        return value

    @field_validator("database_migration_url")
    @classmethod
    def _migration_url_must_be_postgres(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_database_url(value.get_secret_value(), "DATABASE_MIGRATION_URL")
        return value

    @field_validator("app_role")
    @classmethod
    def _blank_role_is_none(cls, value: str | None) -> str | None:
        # DB_APP_ROLE= (blank) is unset.
        return (value or "").strip() or None

    @field_validator("database_replica_urls")
    @classmethod
    def _replicas_must_be_postgres(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_replica_urls(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _replicas_need_a_primary(self) -> "Settings":
        if self.database_url is None and self.replica_urls():
            raise ValueError(
                "DATABASE_REPLICA_URLS needs DATABASE_URL: set it to the primary the "
                "replicas stream from"
            )
        return self

    @model_validator(mode="after")
    def _migration_url_needs_the_service_url(self) -> "Settings":
        if self.database_url is None and self.database_migration_url is not None:
            raise ValueError(
                "DATABASE_MIGRATION_URL needs DATABASE_URL: set it to the URL the service "
                "connects with, as the role the migrations grant to"
            )
        return self

    def url(self, driver: str = "asyncpg") -> URL:
        """The configured URL for the given driver (asyncpg or psycopg)."""
        if self.database_url is None:
            raise RuntimeError(
                "DATABASE_URL is not set. Set it to a PostgreSQL server "
                f"({URL_EXAMPLE}), or run `{{ cookiecutter.package_name }} serve` / "
                "`{{ cookiecutter.package_name }} migrate`, which start a local private cluster."
            )
        url = parse_database_url(self.database_url.get_secret_value())
        return url.set(drivername=f"postgresql+{driver}")

    def migration_url(self, driver: str = "psycopg") -> URL:
        """Where migrations run: DATABASE_MIGRATION_URL, else DATABASE_URL."""
        if self.database_migration_url is None:
            return self.url(driver)
        url = parse_database_url(
            self.database_migration_url.get_secret_value(), "DATABASE_MIGRATION_URL"
        )
        return url.set(drivername=f"postgresql+{driver}")

    @property
    def grantee(self) -> str | None:
        """The role the migrations grant the service's privileges to: DB_APP_ROLE, else
        DATABASE_URL's user when DATABASE_MIGRATION_URL connects as another.

        None when one role both migrates and serves: it owns the tables, and needs no grant.
        """
        if self.app_role is not None:
            return self.app_role
        if self.database_url is None or self.database_migration_url is None:
            return None
        service_user = self.url().username
        return service_user if service_user != self.migration_url().username else None

    def replica_urls(self, driver: str = "asyncpg") -> list[URL]:
        """The configured replicas' URLs for the given driver; empty when there are none."""
        if self.database_replica_urls is None:
            return []
        urls = parse_replica_urls(self.database_replica_urls.get_secret_value())
        return [url.set(drivername=f"postgresql+{driver}") for url in urls]

    @property
    def safe_url(self) -> str:
        """The URL for logs and messages, password masked."""
        if self.database_url is None:
            return "<embedded local PostgreSQL>"
        return self.url().render_as_string(hide_password=True)


@lru_cache
def get_settings() -> Settings:
    return Settings()
