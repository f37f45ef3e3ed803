"""The Idempotency-Key header as a dependency, and the answers its outcomes get."""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from {{ cookiecutter.package_name }}.api.errors import error_response
from {{ cookiecutter.package_name }}.features.idempotency.keys import KeyReused, KeyUnfinished, Replayed

REPLAYED_HEADER = "Idempotent-Replayed"


async def replayed(request: Request, error: Exception) -> Response:
    assert isinstance(error, Replayed)
    return Response(
        error.body,
        status_code=error.status_code,
        media_type="application/json",
        headers={**error.headers, REPLAYED_HEADER: "true"},
    )


async def key_reused(request: Request, error: Exception) -> JSONResponse:
    return error_response(422, "idempotency_key_reused", str(error))


async def key_unfinished(request: Request, error: Exception) -> JSONResponse:
    return error_response(409, "idempotency_key_unfinished", str(error))


def install(app: FastAPI) -> None:
    app.add_exception_handler(Replayed, replayed)
    app.add_exception_handler(KeyReused, key_reused)
    app.add_exception_handler(KeyUnfinished, key_unfinished)
