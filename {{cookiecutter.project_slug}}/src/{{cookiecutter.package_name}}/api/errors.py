"""Map errors to HTTP answers with one JSON shape: {"error": {"code", "message", ...}}.

That includes the answers the framework makes itself: an unknown path (404), a
method the path does not have (405, with an Allow header listing those it has), a
body that is not UTF-8 (400; one that is not JSON is a 422 `json_invalid`, as any
refused value). The state of the database never causes a 500:
an unreachable, restarting or unmigrated database, or a pool with no free
connection, is a 503 the client may retry. Only a bug is a 500: it is logged once
with its traceback and answered with the request id, never with the exception's
text. Messages never include driver text, which can carry connection details.
"""

import logging
import re
import traceback
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from opentelemetry import trace
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from {{ cookiecutter.package_name }}.api.preconditions import PreconditionFailed, PreconditionRequired
from {{ cookiecutter.package_name }}.db.errors import sqlstate_and_constraint
from {{ cookiecutter.package_name }}.logs import current_request_id
from {{ cookiecutter.package_name }}.observability import metrics, tracing
from {{ cookiecutter.package_name }}.repositories.errors import (
    AlreadyExists,
    MissingReference,
    NotFound,
    StaleVersion,
)

logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 1
RETRY_LATER = {"Retry-After": str(RETRY_AFTER_SECONDS)}
# The order Allow headers list methods in.
METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Codes for HTTPExceptions, the framework's or a route's own; other statuses are
# named after their reason phrase.
HTTP_ERROR_CODES = {
    400: "malformed_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
}


# A JSON body can carry one as an escape (\ud800), and a 422 quotes the input back.
LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


class DatabaseUnavailable(Exception):
    """Raised by code that found the database unreachable on its own terms (a probe timed out)."""


class SchemaBehind(Exception):
    """The database's schema is older than the code's: its migrations have not run yet."""


def encodable(value: object) -> object:
    """`value` with U+FFFD for each lone surrogate, which UTF-8 (so the answer) cannot hold."""
    if isinstance(value, str):
        return LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {encodable(key): encodable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [encodable(item) for item in value]
    return value


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: object
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, **extra}}
    metrics.http_errors.labels(str(status), code).inc()
    if (span := trace.get_current_span()).is_recording():
        span.set_attribute("error.type", code)
        if status >= 500:
            tracing.failed(span, code)
    return JSONResponse(encodable(jsonable_encoder(body)), status_code=status, headers=headers)


def internal_error(method: str, path: str, error: BaseException) -> JSONResponse:
    """A bug: logged here with its traceback, answered with the request id only."""
    logger.error("unhandled error in %s %s", method, path, exc_info=error)
    return error_response(
        500,
        "internal_error",
        "an unexpected error occurred; quote the request id when reporting it",
        request_id=current_request_id.get(),
    )


def raised_while_connecting(error: BaseException) -> bool:
    """Whether SQLAlchemy's pool was opening a connection when the error was raised."""
    return any(
        frame.f_globals.get("__name__", "").startswith("sqlalchemy.pool.")
        for frame, _ in traceback.walk_tb(error.__traceback__)
    )


async def not_found(request: Request, error: Exception) -> JSONResponse:
    return error_response(404, "not_found", str(error))


async def already_exists(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, AlreadyExists)
    return error_response(409, "already_exists", str(error), fields=list(error.fields))


async def missing_reference(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, MissingReference)
    return error_response(422, "missing_reference", str(error), fields=list(error.fields))


async def invalid_input(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return error_response(422, "invalid_input", "the request is not valid", details=error.errors())


def allowed_methods(request: Request) -> str:
    """The methods some route serves this path with, whichever route comes first.

    Starlette's own Allow names only the methods of the first route that matched
    the path, and each method is a route of its own; so ask the router about each.
    """
    routes = request.app.router.routes

    def served_with(method: str) -> bool:
        probe = {**request.scope, "method": method}
        return any(route.matches(probe)[0] is Match.FULL for route in routes)

    return ", ".join(m for m in METHOD_ORDER if m == "OPTIONS" or served_with(m))


async def http_error(request: Request, error: Exception) -> Response:
    """What Starlette and FastAPI raise themselves: routing (404, 405), a body not UTF-8 (400)."""
    assert isinstance(error, HTTPException)
    status, headers = error.status_code, dict(error.headers or {})
    if status == 405:
        headers["Allow"] = allowed_methods(request)
        # The path exists: OPTIONS asks what it allows, and is answered.
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=headers)
        message = f"{request.method} is not allowed here; allowed: {headers['Allow']}"
        return error_response(405, "method_not_allowed", message, headers=headers)
    if status < 400:
        return Response(status_code=status, headers=headers)
    phrase = HTTPStatus(status).phrase
    if status == 404 and "endpoint" not in request.scope:
        message = f"no route matches {request.url.path}"
    else:
        detail = error.detail
        message = detail if isinstance(detail, str) and detail != phrase else phrase.lower()
    code = HTTP_ERROR_CODES.get(status) or phrase.lower().replace(" ", "_")
    return error_response(status, code, message, headers=headers or None)


async def precondition_failed(request: Request, error: Exception) -> JSONResponse:
    headers = {"ETag": error.current} if isinstance(error, PreconditionFailed) else None
    return error_response(412, "precondition_failed", str(error), headers=headers)


async def precondition_required(request: Request, error: Exception) -> JSONResponse:
    return error_response(428, "precondition_required", str(error))


async def schema_behind(request: Request, error: Exception) -> JSONResponse:
    return error_response(503, "schema_out_of_date", str(error), headers=RETRY_LATER)


async def database_unavailable(request: Request, error: Exception) -> JSONResponse:
    # The type only: the driver's message may name hosts or users.
    cause = error.__cause__ if isinstance(error, DatabaseUnavailable) else error
    logger.warning(
        "database unavailable for %s %s: %s", request.method, request.url.path, type(cause).__name__
    )
    return error_response(
        503,
        "database_unavailable",
        "the database is unavailable; retry shortly",
        headers=RETRY_LATER,
    )


async def service_busy(request: Request, error: Exception) -> JSONResponse:
    # The database is fine: every connection of the pool is in use, by other requests.
    logger.warning(
        "no free database connection for %s %s within the pool timeout",
        request.method,
        request.url.path,
    )
    return error_response(
        503, "service_busy", "the service is busy; retry shortly", headers=RETRY_LATER
    )


async def os_error(request: Request, error: Exception) -> JSONResponse:
    # Bare OSErrors mean an unreachable database only when the pool raised them while
    # connecting; anywhere else (a missing file, say) they are a bug.
    if raised_while_connecting(error):
        return await database_unavailable(request, error)
    return internal_error(request.method, request.url.path, error)


# SQLSTATE (or its class, the first two characters) -> status, code, message.
DATABASE_ERRORS = {
    "57014": (504, "query_timeout", "the database took too long to answer"),
    # Undefined table or column: the service runs ahead of the database's migrations.
    "42P01": (503, "schema_out_of_date", "the database schema is not up to date; retry shortly"),
    "42703": (503, "schema_out_of_date", "the database schema is not up to date; retry shortly"),
    "08": (503, "database_unavailable", "the database is unavailable; retry shortly"),
    # Refused at connect, after start-up went well: a rotated password, a dropped role or
    # database. The client can only wait; the log says what to fix.
    "28": (503, "database_unavailable", "the database is unavailable; retry shortly"),
    "3D": (503, "database_unavailable", "the database is unavailable; retry shortly"),
    "40": (503, "conflict_retry", "the request collided with another; retry it"),
    "53": (503, "database_unavailable", "the database is overloaded; retry shortly"),
    "57": (503, "database_unavailable", "the database is restarting; retry shortly"),
    "22": (422, "invalid_input", "a value was not accepted by the database"),
    "23": (409, "conflict", "the change conflicts with existing data"),
}

REFUSED_AT_CONNECT = {
    "28": "the database refused the service's credentials: check DATABASE_URL's user and "
    "password (or its password file) against the server's",
    "3D": "the database named in DATABASE_URL does not exist (any more)",
}


async def database_error(request: Request, error: Exception) -> JSONResponse:
    """Any other database error, by SQLSTATE; unknown ones are a bug."""
    assert isinstance(error, DBAPIError)
    if error.connection_invalidated:
        return await database_unavailable(request, error)
    sqlstate = sqlstate_and_constraint(error)[0] or ""
    known = DATABASE_ERRORS.get(sqlstate) or DATABASE_ERRORS.get(sqlstate[:2])
    if known is None:
        return internal_error(request.method, request.url.path, error)
    status, code, message = known
    if status >= 500:
        logger.warning("%s (SQLSTATE %s) on %s", code, sqlstate, request.url.path)
        if code == "schema_out_of_date":
            logger.error("the database is behind the code: run the migrate command")
        elif sqlstate[:2] in REFUSED_AT_CONNECT:
            logger.error(REFUSED_AT_CONNECT[sqlstate[:2]])
    headers = RETRY_LATER if status == 503 else None
    return error_response(status, code, message, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Exceptions no handler here or in a feature takes are answered by api/middleware.py."""
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_input)
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(AlreadyExists, already_exists)
    app.add_exception_handler(MissingReference, missing_reference)
    app.add_exception_handler(DBAPIError, database_error)
    for connection_error in (OperationalError, InterfaceError, DatabaseUnavailable):
        app.add_exception_handler(connection_error, database_unavailable)
    app.add_exception_handler(SchemaBehind, schema_behind)
    for stale in (PreconditionFailed, StaleVersion):
        app.add_exception_handler(stale, precondition_failed)
    app.add_exception_handler(PreconditionRequired, precondition_required)
    app.add_exception_handler(PoolTimeoutError, service_busy)
    app.add_exception_handler(OSError, os_error)
