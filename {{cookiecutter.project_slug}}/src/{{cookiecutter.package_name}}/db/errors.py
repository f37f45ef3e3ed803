"""Read what PostgreSQL said about a failed statement, whichever driver raised it."""

from sqlalchemy.exc import DBAPIError, InterfaceError, InternalError, OperationalError

SERIALIZATION_FAILURE = "40001"
DEADLOCK_DETECTED = "40P01"
# What a failed attempt to reach the database raises. SQLAlchemy wraps the driver's
# errors, but asyncpg's socket errors (connection refused, unknown host, no Unix
# socket, connect timeout) arrive bare from the pool as it connects.
CONNECTION_ERRORS = (OperationalError, InterfaceError, OSError)
# Besides connection exceptions (class 08): the server shutting down, crashed, or starting.
SERVER_GOING_AWAY = frozenset({"57P01", "57P02", "57P03"})
UNIQUE_VIOLATION = "23505"
FOREIGN_KEY_VIOLATION = "23503"


def driver_sqlstate(driver_error: BaseException | None) -> str | None:
    """The SQLSTATE of a driver's own error: psycopg's, or asyncpg's, which SQLAlchemy's
    adapter keeps as the cause of the error it raises."""
    source = getattr(driver_error, "__cause__", None) or driver_error
    sqlstate = getattr(driver_error, "sqlstate", None) or getattr(source, "sqlstate", None)
    return sqlstate if isinstance(sqlstate, str) else None


def sqlstate_and_constraint(error: DBAPIError) -> tuple[str | None, str | None]:
    """The SQLSTATE code and the name of the constraint involved, when there is one."""
    driver_error = error.orig
    # asyncpg's adapter keeps the asyncpg exception as the cause; psycopg has .diag.
    source = getattr(driver_error, "__cause__", None) or driver_error
    sqlstate = driver_sqlstate(driver_error)
    constraint = getattr(source, "constraint_name", None)
    if constraint is None:
        constraint = getattr(getattr(driver_error, "diag", None), "constraint_name", None)
    return sqlstate, constraint


def connection_lost(error: BaseException) -> bool:
    """Whether `error` leaves its connection unusable, rather than failing one statement.

    SQLAlchemy marks a connection it finds closed (`connection_invalidated`). Some
    are lost before the driver knows: the server said goodbye between two statements
    (asyncpg then loses its place in the protocol: an InternalError without a
    SQLSTATE), or stopped answering (the driver's timeout: a bare TimeoutError).
    """
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        sqlstate = sqlstate_and_constraint(error)[0]
        if sqlstate is None:
            return isinstance(error, InternalError)
        return sqlstate.startswith("08") or sqlstate in SERVER_GOING_AWAY
    # Socket errors, and TimeoutError, which is one.
    return isinstance(error, OSError)
