"""Map domain errors to HTTP answers with one JSON shape: {"error": {...}}."""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from {{ cookiecutter.package_name }}.repositories.errors import AlreadyExists, NotFound


def error_response(status: int, code: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


async def not_found(request: Request, error: Exception) -> JSONResponse:
    return error_response(404, "not_found", str(error))


async def already_exists(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, AlreadyExists)
    return error_response(409, "already_exists", str(error), fields=list(error.fields))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(AlreadyExists, already_exists)
