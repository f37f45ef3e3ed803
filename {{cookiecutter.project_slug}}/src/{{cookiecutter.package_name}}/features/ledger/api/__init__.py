"""The accounts and transfers endpoints, and the answer to a refused transfer."""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from {{ cookiecutter.package_name }}.api.errors import error_response
from {{ cookiecutter.package_name }}.features.ledger.api import accounts
from {{ cookiecutter.package_name }}.features.ledger.transfers import InsufficientFunds


async def insufficient_funds(request: Request, error: Exception) -> JSONResponse:
    return error_response(409, "insufficient_funds", str(error))


def install(app: FastAPI) -> None:
    app.include_router(accounts.router)
    app.add_exception_handler(InsufficientFunds, insufficient_funds)
