"""Read-your-writes across requests, when reads run on replicas.

A request that commits answers with the WAL position of its last commit, in the
X-DB-Position header and the db_position cookie. A request that brings it back
(a cookie comes back by itself; the header, if the client sends it) reads from
a replica only once that replica has replayed this far, from the primary until
then. Without it, a read may be as old as DB_REPLICA_MAX_LAG_MS.
"""

from starlette.datastructures import MutableHeaders
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from {{ cookiecutter.package_name }}.api.middleware import HttpMiddleware
from {{ cookiecutter.package_name }}.db.replicas.read_after import reading_after
from {{ cookiecutter.package_name }}.db.replicas.router import UNKNOWN_POSITION
from {{ cookiecutter.package_name }}.db.replicas.wal import format_position, parse_position

POSITION_HEADER = "X-DB-Position"
POSITION_COOKIE = "db_position"
# For the OpenAPI document of a service with replicas.
DESCRIPTION = (
    " Reads may run on replicas: an answer to a request that changed data carries the "
    f"`{POSITION_HEADER}` header and the `{POSITION_COOKIE}` cookie; send either back "
    "(a cookie jar does it by itself) and your next reads see your changes."
)


def position_sent(scope: Scope) -> int:
    """The furthest valid position the client sent, in the header or the cookie; 0 if none."""
    sent = [0]
    for name, value in scope["headers"]:
        if name == POSITION_HEADER.lower().encode():
            sent.append(parse_position(value.decode("latin-1")) or 0)
        elif name == b"cookie":
            cookie = cookie_parser(value.decode("latin-1")).get(POSITION_COOKIE)
            sent.append(parse_position(cookie) or 0 if cookie else 0)
    return max(sent)


class ReadAfterMiddleware(HttpMiddleware):
    def __init__(self, app: ASGIApp, cookie_max_age_seconds: int) -> None:
        super().__init__(app)
        self.cookie_attributes = f"Max-Age={cookie_max_age_seconds}; Path=/; HttpOnly; SameSite=Lax"

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        sent = position_sent(scope)
        with reading_after(sent) as read_after:

            async def send_with_position(message: Message) -> None:
                position = read_after.position
                if message["type"] == "http.response.start" and sent < position < UNKNOWN_POSITION:
                    spelled = format_position(position)
                    headers = MutableHeaders(scope=message)
                    headers[POSITION_HEADER] = spelled
                    headers.append(
                        "set-cookie", f"{POSITION_COOKIE}={spelled}; {self.cookie_attributes}"
                    )
                await send(message)

            await self.app(scope, receive, send_with_position)
