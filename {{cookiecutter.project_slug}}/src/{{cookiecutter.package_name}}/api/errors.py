"""Map errors to HTTP answers with one JSON shape: {"error": {"code", "message", ...}}.

The state of the database never causes a 500: an unreachable, exhausted,
restarting or unmigrated database is a 503 the client may retry. Only a bug
(SQL the server cannot parse, say) is a 500. Messages never include driver
text, which can carry connection details.
"""

import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from {{ cookiecutter.package_name }}.db.errors import sqlstate_and_constraint
from {{ cookiecutter.package_name }}.repositories.errors import (
    AlreadyExists,
    MissingReference,
    NotFound,
)
{%- if cookiecutter.include_example_models %}
from {{ cookiecutter.package_name }}.services.transfers import InsufficientFunds
{%- endif %}

logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 1
# Raised when the server cannot be reached or the pool has no free connection.
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, PoolTimeoutError, OSError)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: object
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, **extra}}
    return JSONResponse(jsonable_encoder(body), status_code=status, headers=headers)


async def not_found(request: Request, error: Exception) -> JSONResponse:
    return error_response(404, "not_found", str(error))


async def already_exists(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, AlreadyExists)
    return error_response(409, "already_exists", str(error), fields=list(error.fields))


async def missing_reference(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, MissingReference)
    return error_response(422, "missing_reference", str(error), fields=list(error.fields))
{%- if cookiecutter.include_example_models %}


async def insufficient_funds(request: Request, error: Exception) -> JSONResponse:
    return error_response(409, "insufficient_funds", str(error))
{%- endif %}


async def invalid_input(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return error_response(422, "invalid_input", "the request is not valid", details=error.errors())


async def database_unavailable(request: Request, error: Exception) -> JSONResponse:
    # The type only: the driver's message may name hosts or users.
    logger.warning(
        "database unavailable for %s %s: %s", request.method, request.url.path, type(error).__name__
    )
    return error_response(
        503,
        "database_unavailable",
        "the database is unavailable; retry shortly",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


# SQLSTATE (or its class, the first two characters) -> status, code, message.
DATABASE_ERRORS = {
    "57014": (504, "query_timeout", "the database took too long to answer"),
    # Undefined table or column: the service runs ahead of the database's migrations.
    "42P01": (503, "schema_out_of_date", "the database schema is not up to date; retry shortly"),
    "42703": (503, "schema_out_of_date", "the database schema is not up to date; retry shortly"),
    "08": (503, "database_unavailable", "the database is unavailable; retry shortly"),
    "40": (503, "conflict_retry", "the request collided with another; retry it"),
    "53": (503, "database_unavailable", "the database is overloaded; retry shortly"),
    "57": (503, "database_unavailable", "the database is restarting; retry shortly"),
    "22": (422, "invalid_input", "a value was not accepted by the database"),
    "23": (409, "conflict", "the change conflicts with existing data"),
}


async def database_error(request: Request, error: Exception) -> JSONResponse:
    """Any other database error, by SQLSTATE; unknown ones are a 500 without driver text."""
    assert isinstance(error, DBAPIError)
    sqlstate = sqlstate_and_constraint(error)[0] or ""
    known = DATABASE_ERRORS.get(sqlstate) or DATABASE_ERRORS.get(sqlstate[:2])
    if known is None:
        logger.error("unexpected database error %s on %s", sqlstate, request.url.path)
        return error_response(500, "internal_error", "unexpected database error")
    status, code, message = known
    if status >= 500:
        logger.warning("%s (SQLSTATE %s) on %s", code, sqlstate, request.url.path)
        if code == "schema_out_of_date":
            logger.error("the database is behind the code: run the migrate command")
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None
    return error_response(status, code, message, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(AlreadyExists, already_exists)
    app.add_exception_handler(MissingReference, missing_reference)
{%- if cookiecutter.include_example_models %}
    app.add_exception_handler(InsufficientFunds, insufficient_funds)
{%- endif %}
    app.add_exception_handler(RequestValidationError, invalid_input)
    app.add_exception_handler(DBAPIError, database_error)
    for error_type in UNAVAILABLE_ERRORS:
        app.add_exception_handler(error_type, database_unavailable)
