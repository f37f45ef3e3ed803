"""How long a migration may wait for a lock and run, and the error that says what to do
when it cannot.

A migration that alters a table waits for a lock behind every transaction using
that table, and while it waits every later query on the table queues behind it;
so each migration transaction runs with a lock timeout and a statement timeout.
"""

import re
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.exc import DBAPIError

from {{ cookiecutter.package_name }}.db.errors import sqlstate_and_constraint

if TYPE_CHECKING:
    from {{ cookiecutter.package_name }}.settings import Settings

# SQLSTATEs of a statement cancelled by lock_timeout, and by statement_timeout (or by hand).
LOCK_NOT_AVAILABLE = "55P03"
QUERY_CANCELED = "57014"
# The pause before a revision's second attempt; doubled before each further one.
FIRST_LOCK_BACKOFF_SECONDS = 1.0
# What to run to find the transaction in the way, quoted in the error.
LONG_TRANSACTIONS_QUERY = (
    "SELECT pid, now() - xact_start AS age, state, query FROM pg_stat_activity "
    "WHERE xact_start IS NOT NULL ORDER BY xact_start"
)


class MigrationTimeout(RuntimeError):
    """A revision ran into one of the migration timeouts; the message says what to do."""


class MigrationLockTimeout(MigrationTimeout):
    """A revision could not get the locks it needs in any of its attempts."""


class MigrationStatementTimeout(MigrationTimeout):
    """A statement of a revision ran longer than the statement timeout."""


@dataclass(frozen=True)
class MigrationLimits:
    """How long a migration statement may wait for a lock and run, and how often
    `upgrade_database` tries a revision whose wait for a lock timed out."""

    lock_timeout_ms: int
    statement_timeout_ms: int
    lock_attempts: int
    first_backoff_seconds: float = FIRST_LOCK_BACKOFF_SECONDS
    # Behind PgBouncer in transaction mode a session-level advisory lock would stay
    # on whichever server connection took it: all pending revisions then run in
    # one transaction, under a transaction-level lock, and are retried together.
    one_transaction: bool = False

    @classmethod
    def from_settings(cls, settings: "Settings | None" = None) -> "MigrationLimits":
        if settings is None:
            from {{ cookiecutter.package_name }}.settings import get_settings

            settings = get_settings()
        return cls(
            lock_timeout_ms=settings.migration_lock_timeout_ms,
            statement_timeout_ms=settings.migration_statement_timeout_ms,
            lock_attempts=settings.migration_lock_attempts,
            one_transaction=settings.pgbouncer,
        )

    def statements(self) -> tuple[str, str]:
        """The timeouts as SET LOCAL: they end with the transaction, so a pooled
        connection goes back to the pool without them."""
        return (
            f"SET LOCAL lock_timeout = '{int(self.lock_timeout_ms)}ms'",
            f"SET LOCAL statement_timeout = '{int(self.statement_timeout_ms)}ms'",
        )

    def backoff_seconds(self, attempt: int) -> float:
        """The pause after failed attempt number `attempt` (1 for the first)."""
        return self.first_backoff_seconds * 2.0 ** (attempt - 1)


def failed_revision(error: BaseException) -> str:
    """The revision whose upgrade() raised `error`, found in the traceback."""
    for frame, _ in traceback.walk_tb(error.__traceback__):
        revision = frame.f_globals.get("revision")
        if (
            frame.f_code.co_name == "upgrade"
            and "down_revision" in frame.f_globals
            and isinstance(revision, str)
        ):
            return revision
    return "(unknown)"


def failed_statement(error: DBAPIError) -> str:
    statement = re.sub(r"\s+", " ", str(error.statement or "")).strip()
    return statement if len(statement) <= 120 else f"{statement[:117]}..."


def what_was_applied(limits: MigrationLimits) -> str:
    if limits.one_transaction:
        return "no revision was applied"
    return "the revisions before it are applied, it and those after it are not"


def lock_timeout_error(error: DBAPIError, limits: MigrationLimits) -> MigrationLockTimeout:
    return MigrationLockTimeout(
        f"revision {failed_revision(error)} could not get a lock within "
        f"{limits.lock_timeout_ms / 1000:g} s in {limits.lock_attempts} attempt(s) "
        f"(while running: {failed_statement(error)}); {what_was_applied(limits)}. A long "
        f"transaction holds a lock on the table it changes: find it with "
        f"`{LONG_TRANSACTIONS_QUERY}`, let it finish (or end it with pg_terminate_backend(pid)) "
        "and migrate again, or raise DB_MIGRATION_LOCK_TIMEOUT_MS or DB_MIGRATION_LOCK_ATTEMPTS"
    )


def statement_timeout_error(
    error: DBAPIError, limits: MigrationLimits
) -> MigrationStatementTimeout | None:
    """The error to raise for a statement cancelled by statement_timeout, else None."""
    if sqlstate_and_constraint(error)[0] != QUERY_CANCELED or "statement timeout" not in str(
        error.orig
    ):
        return None
    return MigrationStatementTimeout(
        f"revision {failed_revision(error)} ran a statement for longer than "
        f"{limits.statement_timeout_ms / 1000:g} s (while running: {failed_statement(error)}); "
        f"{what_was_applied(limits)}. If it needs longer, start its upgrade() with "
        "op.execute(\"SET LOCAL statement_timeout = '30min'\"), or raise "
        "DB_MIGRATION_STATEMENT_TIMEOUT_MS for this run"
    )
