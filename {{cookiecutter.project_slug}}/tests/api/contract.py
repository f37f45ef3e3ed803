"""Every request and answer an API test makes is checked against the app's OpenAPI document.

An operation's answer must have a status the operation documents. An answer of no
operation must be the framework's: 404 where no route serves the path, 405 (or 204
to OPTIONS) with an Allow header where the path has no route for the method. Every
4xx and 5xx must be JSON in the ErrorResponse shape. The service must also judge a
request as its document does, as API fuzzers check: a request the document refuses
(its parameters or JSON body, by json_schema.py) must not be answered 2xx, and one
it allows must not be refused as invalid_input (422), unless by a rule across the
fields of the body, which a schema cannot state. A test that makes the service
answer what its document does not say fails, naming the operation and the reason.
"""

import email.message
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from {{ cookiecutter.package_name }}.api.middleware import HttpMiddleware
from {{ cookiecutter.package_name }}.api.responses import ErrorResponse
from tests.api.json_schema import problems, resolve, text_problems

# Headers whose meaning a client relies on: an answer may carry them only where documented.
CONTRACT_HEADERS = frozenset({"etag", "idempotent-replayed"})

Operation = dict[str, Any]
# (method, path template, endpoint) -> the operation and its document. The document
# takes ~0.1 s to build and each test has an app of its own, whose routes are those
# of every other app but for the test's own: their endpoint tells them apart.
_documented: dict[tuple[str, str, Callable[..., Any]], tuple[Operation, dict[str, Any]]] = {}


def documented(app: FastAPI, method: str, route: APIRoute) -> tuple[Operation, dict[str, Any]]:
    key = (method, route.path_format, route.endpoint)
    if key not in _documented:
        document = app.openapi()
        _documented[key] = (document["paths"][route.path_format][method.lower()], document)
    return _documented[key]


def documented_statuses(app: FastAPI, method: str, route: APIRoute) -> set[str]:
    return set(documented(app, method, route)[0]["responses"])


def documented_headers(app: FastAPI, method: str, route: APIRoute, status: int) -> set[str]:
    response = documented(app, method, route)[0]["responses"].get(str(status), {})
    return {name.lower() for name in response.get("headers", {})}


def reads_json(content_type: str | None) -> bool:
    """Whether FastAPI reads a body sent with this content type as JSON."""
    if not content_type:
        return True
    header = email.message.Message()
    header["content-type"] = content_type
    subtype = header.get_content_subtype()
    return header.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def request_problems(
    operation: Operation,
    document: Mapping[str, Any],
    parameters: Mapping[str, Mapping[str, str]],
    body: bytes,
    content_type: str | None,
) -> list[str] | None:
    """What the document refuses in a request: nothing if it allows it, None if it cannot tell.

    `parameters` maps "path", "query", "header" and "cookie" to the request's values.
    It cannot tell for a body that is not JSON, which the framework refuses itself.
    """
    found: list[str] = []
    for parameter in operation.get("parameters", []):
        place, name, schema = parameter["in"], parameter["name"], parameter["schema"]
        if "$ref" in schema:
            schema = resolve(schema, document)
        choices = schema.get("anyOf", [schema])
        assert all(choice.get("type") != "array" for choice in choices), (
            f"contract.py does not read lists of values ({place} parameter {name}): teach it"
        )
        text = parameters[place].get(name)
        if text is None:
            if parameter.get("required"):
                found.append(f"{place} parameter {name}: missing")
        else:
            found += text_problems(schema, text, document, f"{place} parameter {name}")
    request_body = operation.get("requestBody")
    if request_body is None:
        return found
    media = request_body["content"].get("application/json")
    if media is None or not reads_json(content_type):
        return None
    if not body:
        return [*found, "body: missing"] if request_body.get("required") else found
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return found + problems(media["schema"], value, document, "body")


def invalid_input_details(status: int, body: bytes) -> list[dict[str, Any]] | None:
    """The details of an invalid_input answer (empty if it has none), None for other answers."""
    if status != 422:
        return None
    error = json.loads(body)["error"]
    if error["code"] != "invalid_input":
        return None
    details: list[dict[str, Any]] = error.get("details", [])
    return details


def refused_by_a_body_rule(details: list[dict[str, Any]]) -> bool:
    """Whether every refusal is a model validator's, about the body as a whole."""
    return bool(details) and all(
        detail["loc"] == ["body"] and detail["type"] == "value_error" for detail in details
    )


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


def check_request(app: FastAPI, scope: Scope, route: APIRoute, body: bytes, answer: Answer) -> None:
    """The service judged the request as its document does (see above)."""
    method = scope["method"]
    operation, document = documented(app, method, route)
    request = Request(scope)
    parameters = {
        "path": request.path_params,
        "query": request.query_params,
        "header": request.headers,
        "cookie": request.cookies,
    }
    refused = request_problems(
        operation, document, parameters, body, request.headers.get("content-type")
    )
    if refused is None:
        return
    assert not refused or answer.status >= 300, (
        f"{method} {route.path_format} answered {answer.status} to a request its OpenAPI "
        f"document refuses: {'; '.join(refused)}"
    )
    details = invalid_input_details(answer.status, bytes(answer.body))
    assert refused or details is None or refused_by_a_body_rule(details), (
        f"{method} {route.path_format} refused as invalid_input a request its OpenAPI "
        f"document allows: {details or 'no details: the database refused a value'}"
    )


def operation_route(scope: Scope) -> APIRoute | None:
    """The route of the operation that served the request, if one did."""
    route = scope.get("route")
    if isinstance(route, APIRoute) and route.include_in_schema:
        return route if scope["method"] in (route.methods or ()) else None
    return None


def check_answer(app: FastAPI, scope: Scope, answer: Answer, body: bytes | None = None) -> None:
    """Check the answer, and with the request's `body`, the request (see above)."""
    method, path = scope["method"], scope["path"]
    route, operation = scope.get("route"), operation_route(scope)
    if operation is not None:
        statuses = documented_statuses(app, method, operation)
        assert str(answer.status) in statuses, (
            f"{method} {operation.path_format} answered {answer.status}, which its OpenAPI "
            f"operation does not document (it documents {sorted(statuses)})"
        )
        declared = documented_headers(app, method, operation, answer.status)
        for header in CONTRACT_HEADERS & set(answer.headers):
            assert header in declared, (
                f"{method} {operation.path_format} answered {answer.status} with {header}, "
                "which its OpenAPI response does not document"
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
    if operation is not None and body is not None:
        check_request(app, scope, operation, body, answer)


class ContractCheck(HttpMiddleware):
    """An ASGI app that runs `app` and checks each of its answers, and requests (see above).

    requests=False leaves requests unchecked, for a test that makes a route refuse a
    request the document allows on purpose.
    """

    # A FastAPI app: its OpenAPI document says which answers are right.
    app: FastAPI

    def __init__(self, app: FastAPI, *, requests: bool = True) -> None:
        super().__init__(app)
        self.requests = requests

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer, body = Answer(), bytearray()

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                body.extend(message.get("body", b""))
            return message

        async def recording_send(message: Message) -> None:
            answer.record(message)
            await send(message)

        await self.app(scope, recording_receive, recording_send)
        check_answer(self.app, scope, answer, bytes(body) if self.requests else None)
