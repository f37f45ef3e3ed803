"""Every answer an API test gets is checked against the app's OpenAPI document.

An operation's answer must have a status the operation documents. An answer of no
operation must be the framework's: 404 where no route serves the path, 405 (or 204
to OPTIONS) with an Allow header where the path has no route for the method. Every
4xx and 5xx must be JSON in the ErrorResponse shape. A test that makes the service
answer what its document does not say fails, naming the operation and the status.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.types import Message, Receive, Scope, Send

from {{ cookiecutter.package_name }}.api.middleware import HttpMiddleware
from {{ cookiecutter.package_name }}.api.responses import ErrorResponse

# (method, path template, endpoint) -> the statuses the operation documents. The
# document takes ~0.1 s to build and each test has an app of its own, whose routes
# are those of every other app but for the test's own: their endpoint tells them apart.
_documented: dict[tuple[str, str, Callable[..., Any]], set[str]] = {}


def documented_statuses(app: FastAPI, method: str, route: APIRoute) -> set[str]:
    key = (method, route.path_format, route.endpoint)
    if key not in _documented:
        operation = app.openapi()["paths"][route.path_format][method.lower()]
        _documented[key] = set(operation["responses"])
    return _documented[key]


def framework_urls(app: FastAPI) -> set[str | None]:
    """The routes FastAPI adds for its documentation, which are no operation."""
    return {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}


@dataclass
class Answer:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)

    def record(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {
                name.decode("latin-1").lower(): value.decode("latin-1")
                for name, value in message.get("headers", [])
            }
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


def check_answer(app: FastAPI, scope: Scope, answer: Answer) -> None:
    method, path = scope["method"], scope["path"]
    route = scope.get("route")
    if isinstance(route, APIRoute) and route.include_in_schema and method in (route.methods or ()):
        documented = documented_statuses(app, method, route)
        assert str(answer.status) in documented, (
            f"{method} {route.path_format} answered {answer.status}, which its OpenAPI "
            f"operation does not document (it documents {sorted(documented)})"
        )
    elif "endpoint" not in scope:
        assert answer.status == 404, (
            f"{method} {path} matched no route but answered {answer.status}"
        )
    elif not isinstance(route, APIRoute) and path in framework_urls(app):
        assert answer.status == 200, f"{method} {path} answered {answer.status}"
    else:
        # The path has routes, none for this method.
        assert answer.status in {204, 405}, f"{method} {path} answered {answer.status}"
        assert answer.status == 405 or method == "OPTIONS"
        assert "allow" in answer.headers, f"{method} {path} answered {answer.status} without Allow"
    if answer.status >= 400:
        assert answer.headers.get("content-type") == "application/json", (
            f"{method} {path} answered {answer.status} as {answer.headers.get('content-type')}"
        )
        ErrorResponse.model_validate_json(bytes(answer.body))


class ContractCheck(HttpMiddleware):
    """An ASGI app that runs `app` and checks each of its answers (see above)."""

    # A FastAPI app: its OpenAPI document says which answers are right.
    app: FastAPI

    def __init__(self, app: FastAPI) -> None:
        super().__init__(app)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = Answer()

        async def recording_send(message: Message) -> None:
            answer.record(message)
            await send(message)

        await self.app(scope, receive, recording_send)
        check_answer(self.app, scope, answer)
