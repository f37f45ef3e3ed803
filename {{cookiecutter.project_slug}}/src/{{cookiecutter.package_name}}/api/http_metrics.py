"""Each HTTP answer counted by route template, method and status, and timed; and the
/metrics route a Prometheus server scrapes (kept out of the OpenAPI document).

The route is the template (`/users/{user_id}`), never the path itself, and a path
no route serves counts as `unmatched`: a scan of random paths adds no series.
"""

import time

from fastapi import APIRouter, Response
from starlette.types import Message, Receive, Scope, Send

from {{ cookiecutter.package_name }}.api.middleware import HttpMiddleware
from {{ cookiecutter.package_name }}.observability import metrics

UNMATCHED = "unmatched"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def scrape() -> Response:
    content, content_type = metrics.exposition()
    return Response(content, media_type=content_type)


class HttpMetricsMiddleware(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        # What the client gets if nothing answers: the server closes with a 500.
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = getattr(scope.get("route"), "path", UNMATCHED)
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "_OTHER"
            metrics.http_requests.labels(method, route, str(status)).inc()
            metrics.http_duration.labels(method, route).observe(time.perf_counter() - started)
