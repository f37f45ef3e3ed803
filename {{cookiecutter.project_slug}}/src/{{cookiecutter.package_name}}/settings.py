"""Configuration from the environment (and an optional .env file).

Database URLs are secrets: they are only ever shown with their passwords masked.
Settings that fail validation are reported by the environment variable to fix, one
line each, not by field name in pydantic's multi-line report (InvalidSettings).
"""

import importlib
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from {{ cookiecutter.package_name }}.logs import LogFormat

POSTGRES_SCHEMES = frozenset(
    {"postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg", "postgresql+psycopg2"}
)
URL_EXAMPLE = "postgresql://user:password@host:5432/dbname"
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# libpq's default root certificate, used when verify-ca or verify-full names none.
DEFAULT_ROOT_CERT = Path("~/.postgresql/root.crt")
# sslrootcert=system: the system's certificate authorities (libpq 16's spelling).
SYSTEM_ROOTS = "system"
# A setting without an alias of its own is read from DB_<NAME>.
ENV_PREFIX = "DB_"
# What make_url raises for text that is not a URL, and for a port that is not a number.
NOT_A_URL = (ArgumentError, ValueError)
# Where make_url finds a password: between the user name's colon and the next @ (its
# own pattern), or in a libpq-style `password` query parameter.
PASSWORD_BEFORE_HOST = re.compile(r"^(?P<kept>[\w+]+://[^:/]*:)[^@]*@")
PASSWORD_IN_QUERY = re.compile(r"(?P<kept>[?&]password=)[^&]*")


def mask_password(raw: str) -> str:
    """`raw` as written, with its password shown as ***."""
    masked = PASSWORD_BEFORE_HOST.sub(r"\g<kept>***@", raw, count=1)
    return PASSWORD_IN_QUERY.sub(r"\g<kept>***", masked)


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
    check_tls(url, setting)
    return url


def check_tls(url: URL, setting: str) -> None:
    """libpq's TLS parameters, as every PostgreSQL client spells them: a known mode, and
    files that exist, so that a typo fails at start-up rather than at the first connection."""
    query = url.query
    mode = query.get("sslmode", "prefer")
    if mode not in SSL_MODES:
        raise ValueError(f"{setting}: sslmode={mode} is not one of {', '.join(SSL_MODES)}")
    for parameter in ("sslrootcert", "sslcert", "sslkey"):
        path = query.get(parameter)
        if isinstance(path, str) and path != SYSTEM_ROOTS and not Path(path).is_file():
            raise ValueError(f"{setting}: {parameter} {path} is not a readable file")
    if ("sslcert" in query) != ("sslkey" in query):
        raise ValueError(f"{setting}: sslcert and sslkey go together (a certificate and its key)")
    verifies = mode in ("verify-ca", "verify-full")
    if verifies and "sslrootcert" not in query and not DEFAULT_ROOT_CERT.expanduser().is_file():
        raise ValueError(
            f"{setting}: sslmode={mode} needs sslrootcert=<the CA's certificate file> "
            f"(or sslrootcert=system for the system's CAs); {DEFAULT_ROOT_CERT} does not exist"
        )


def read_secret(path: Path, setting: str) -> str:
    """A mounted secret's content without its trailing newline; ValueError naming `setting`."""
    try:
        content = path.read_text().rstrip("\r\n")
    except OSError as error:
        raise ValueError(f"{setting}: cannot read {path} ({type(error).__name__})") from None
    if not content:
        raise ValueError(f"{setting}: {path} is empty")
    return content


def load_provider(spec: str, setting: str = "DB_PASSWORD_PROVIDER") -> Callable[..., Any]:
    """The callable `spec` names as module:attribute; ValueError naming `setting` if none."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{setting}={spec} must name module:callable, e.g. mypackage.iam:token")
    try:
        provider = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"{setting}={spec}: {type(error).__name__}: {error}") from None
    if not callable(provider):
        raise ValueError(f"{setting}={spec} is not callable")
    return provider  # type: ignore[no-any-return]


def parse_replica_urls(raw: str) -> list[URL]:
    """Comma-separated PostgreSQL URLs; blanks between commas are ignored."""
    parts = [part.strip() for part in raw.split(",")]
    return [
        parse_database_url(part, f"DATABASE_REPLICA_URLS (URL {number})")
        for number, part in enumerate(parts, start=1)
        if part
    ]


class LogSettings(BaseSettings):
    """The log format alone: read again when the other settings are invalid, so that
    what is wrong with them is reported in the format asked for."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # LOG_FORMAT=json: one JSON object per log line, for log shippers (see logs.py).
    log_format: Annotated[
        LogFormat, Field(validation_alias=AliasChoices("LOG_FORMAT", "log_format"))
    ] = "text"


class Settings(LogSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        validate_by_name=True,
        # Validation errors must not echo a URL that carries a password.
        hide_input_in_errors=True,
    )

    # None means "no server configured": the CLI then runs a private local cluster.
    database_url: Annotated[
        SecretStr | None, Field(validation_alias=AliasChoices("DATABASE_URL", "database_url"))
    ] = None

    # The owner's URL, for `migrate`: DDL and grants; DATABASE_URL then names the
    # application role, which only reads and writes rows (db/roles.py).
    migration_url: Annotated[
        SecretStr | None,
        Field(validation_alias=AliasChoices("DATABASE_MIGRATION_URL", "database_migration_url")),
    ] = None
    migration_url_file: Annotated[
        Path | None, Field(validation_alias="DATABASE_MIGRATION_URL_FILE")
    ] = None
    # The role `migrate` grants the service's privileges to (db/roles.py); by
    # default DATABASE_URL's user when DATABASE_MIGRATION_URL names another.
    app_role: str | None = Field(default=None, max_length=63)
    # The same from files, as Docker and Kubernetes mount secrets (db/credentials.py):
    # DATABASE_URL_FILE instead of DATABASE_URL; DATABASE_PASSWORD_FILE for the password
    # alone, read again for new connections when it changes; or a provider called for
    # each new connection, `module:callable`, for short-lived tokens such as IAM's.
    url_file: Annotated[Path | None, Field(validation_alias="DATABASE_URL_FILE")] = None
    password_file: Annotated[Path | None, Field(validation_alias="DATABASE_PASSWORD_FILE")] = None
    replica_urls_file: Annotated[
        Path | None, Field(validation_alias="DATABASE_REPLICA_URLS_FILE")
    ] = None
    replica_password_file: Annotated[
        Path | None, Field(validation_alias="DATABASE_REPLICA_PASSWORD_FILE")
    ] = None
    password_provider: str | None = None

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
    # Seconds an Idempotency-Key's answer is kept (features/idempotency).
    idempotency_ttl: int = Field(default=86400, gt=0)
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

    @model_validator(mode="after")
    def _secrets_from_files(self) -> "Settings":
        pairs = [
            ("database_url", "DATABASE_URL", "url_file", "DATABASE_URL_FILE"),
            (
                "migration_url",
                "DATABASE_MIGRATION_URL",
                "migration_url_file",
                "DATABASE_MIGRATION_URL_FILE",
            ),
            (
                "database_replica_urls",
                "DATABASE_REPLICA_URLS",
                "replica_urls_file",
                "DATABASE_REPLICA_URLS_FILE",
            ),
        ]
        for field, variable, file_field, file_variable in pairs:
            path: Path | None = getattr(self, file_field)
            if path is None:
                continue
            if getattr(self, field) is not None:
                raise ValueError(f"{variable} and {file_variable} are both set: keep one")
            content = read_secret(path, file_variable)
            for part in content.split(","):
                if part.strip():
                    parse_database_url(part.strip(), file_variable)
            setattr(self, field, SecretStr(content))
        for path, variable in [
            (self.password_file, "DATABASE_PASSWORD_FILE"),
            (self.replica_password_file, "DATABASE_REPLICA_PASSWORD_FILE"),
        ]:
            if path is not None:
                read_secret(path, variable)
                if self.password_provider is not None:
                    raise ValueError(f"{variable} and DB_PASSWORD_PROVIDER are both set: keep one")
        if self.password_provider is not None:
            load_provider(self.password_provider)
        given = [
            ("DATABASE_URL", self.database_url, self.password_file, "DATABASE_PASSWORD_FILE"),
            (
                "DATABASE_REPLICA_URLS",
                self.database_replica_urls,
                self.replica_password_file,
                "DATABASE_REPLICA_PASSWORD_FILE",
            ),
        ]
        for variable, value, password_file, file_variable in given:
            urls = [] if value is None else value.get_secret_value().split(",")
            if password_file is not None and any(make_url(u.strip()).password for u in urls):
                raise ValueError(
                    f"{variable} carries a password and {file_variable} gives one: keep one"
                )
        return self

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

    @field_validator("migration_url")
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
        if self.database_url is None and self.migration_url is not None:
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

    def migration_url_for(self, driver: str = "psycopg") -> URL:
        """Where `migrate` connects: DATABASE_MIGRATION_URL, else DATABASE_URL."""
        if self.migration_url is None:
            return self.url(driver)
        url = parse_database_url(self.migration_url.get_secret_value(), "DATABASE_MIGRATION_URL")
        return url.set(drivername=f"postgresql+{driver}")

    def granted_role(self) -> str | None:
        """The role `migrate` grants DML to: DB_APP_ROLE, else DATABASE_URL's user when the
        migrations run as another; None for one role doing both."""
        if self.app_role is not None:
            return self.app_role
        if self.migration_url is None or self.database_url is None:
            return None
        user = self.url().username
        return user if user != self.migration_url_for().username else None

    def replica_urls(self, driver: str = "asyncpg") -> list[URL]:
        """The configured replicas' URLs for the given driver; empty when there are none."""
        if self.database_replica_urls is None:
            return []
        urls = parse_replica_urls(self.database_replica_urls.get_secret_value())
        return [url.set(drivername=f"postgresql+{driver}") for url in urls]

    @property
    def safe_url(self) -> str:
        """The URL for logs and messages: as DATABASE_URL has it, password masked."""
        if self.database_url is None:
            return "<embedded local PostgreSQL>"
        return mask_password(self.database_url.get_secret_value())


class InvalidSettings(ValueError):
    """Settings that failed validation: one line per environment variable to fix."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))

    @classmethod
    def from_error(cls, error: ValidationError) -> "InvalidSettings":
        by_variable: dict[str, list[str]] = {}
        own_messages: list[str] = []
        for detail in error.errors():
            if detail["type"] == "value_error":
                # Our validators' messages name their variables already.
                own_messages.append(str(detail["ctx"]["error"]))
                continue
            variable = environment_variable(str(detail["loc"][0]))
            message = detail["msg"]
            by_variable.setdefault(variable, []).append(message[:1].lower() + message[1:])
        problems = [
            f"{variable} is not valid: {'; '.join(messages)}"
            for variable, messages in by_variable.items()
        ]
        return cls(problems + own_messages)


def environment_variable(field_or_alias: str) -> str:
    """The environment variable that sets a field of Settings, which pydantic names by
    its alias when it has one, else by its name."""
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            if field_or_alias == name or field_or_alias in alias.choices:
                return str(alias.choices[0])
        elif field_or_alias == name:
            return f"{ENV_PREFIX}{name}".upper()
    return field_or_alias


def log_format_despite_errors() -> LogFormat:
    """LOG_FORMAT, or "text" when it is invalid too: the format to report invalid settings in."""
    try:
        return LogSettings().log_format
    except ValidationError:
        return "text"


@lru_cache
def get_settings() -> Settings:
    """The settings from the environment; InvalidSettings names what to fix."""
    try:
        return Settings()
    except ValidationError as error:
        raise InvalidSettings.from_error(error) from None
