"""Every request has an id, and no exception leaves the app unanswered.

The id is the caller's X-Request-ID when it is a sane one (1 to 128 letters,
digits and `._:-`), a new one otherwise. It is in every log line written while the
request is handled (logs.py) and in the X-Request-ID header of the answer.

An exception no handler of api/errors.py took is logged here, once, with its
traceback, and answered with a 500 carrying the request id. It is not raised
further: Starlette would raise it again to the server, which logs it a second time.
"""

import logging
import re
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from {{ cookiecutter.package_name }}.api.errors import internal_error
from {{ cookiecutter.package_name }}.logs import current_request_id

logger = logging.getLogger(__name__)
REQUEST_ID_HEADER = "X-Request-ID"
# Safe to echo in a header and to write in a log line.
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_for(scope: Scope) -> str:
    """The caller's id if it is valid, a new one otherwise."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            given = value.decode("latin-1")
            return given if VALID_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    return uuid.uuid4().hex


class HttpMiddleware:
    """A pure ASGI middleware for HTTP requests: other scopes (lifespan) pass straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.handle(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one HTTP request, through `self.app`."""
        raise NotImplementedError


class RequestContextMiddleware(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = request_id_for(scope)
        token = current_request_id.set(request_id)
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception as error:
            response = internal_error(scope["method"], scope["path"], error)
            # Too late for another answer: the server closes the connection instead.
            if not response_started:
                await response(scope, receive, send_with_request_id)
        finally:
            current_request_id.reset(token)
