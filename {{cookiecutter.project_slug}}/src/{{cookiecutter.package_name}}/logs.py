"""Log lines that can be traced and shipped: time, level, logger, request id, message.

`LOG_FORMAT=text` (the default) writes them for people, `LOG_FORMAT=json` one JSON
object per line for log shippers. The request id is whatever the code handling a
request put in `current_request_id`{% if cookiecutter.use_fastapi %} (api/middleware.py does, for every HTTP request){% endif %};
lines logged outside a request carry "-". The CLI configures logging{% if cookiecutter.use_fastapi %}, and so does
the app at start-up where nothing has (a worker process). `serve` hands uvicorn
server_log_config(), so that uvicorn's own lines take the same format from its first,
in every process; under a bare `uvicorn --factory`, they take it from the app's
start-up on{% endif %}.
"""

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from opentelemetry import trace

LogFormat = Literal["text", "json"]
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)
NO_REQUEST = "-"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s%(trace)s] %(message)s"
# uvicorn gives these loggers handlers and formats of their own when it starts.
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request it was logged for, and with the
    trace and span it was logged in when tracing is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get() or NO_REQUEST
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            trace_id, span_id = format(span.trace_id, "032x"), format(span.span_id, "016x")
            record.trace_id, record.span_id = trace_id, span_id
            record.trace = f" trace_id={trace_id} span_id={span_id}"
        else:
            record.trace = ""
        return True


def _timestamp(record: logging.LogRecord) -> str:
    # ISO 8601 in UTC with milliseconds: sortable, and unambiguous across hosts.
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _timestamp(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per record; a traceback is a field, so it stays on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", NO_REQUEST),
            "message": record.getMessage(),
        }
        for key in ("trace_id", "span_id"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        # Values a log call passes as extra={"fields": {...}}, for programs to read.
        entry |= getattr(record, "fields", {})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class ServiceLogHandler(logging.StreamHandler[TextIO]):
    """The handler configure_logging installs, recognisable so that it is installed once.

    Without a stream of its own it writes to whatever sys.stderr is at the time, as
    logging's last-resort handler does, so a stderr replaced later is followed.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self.follows_stderr = stream is None

    def emit(self, record: logging.LogRecord) -> None:
        if self.follows_stderr:
            self.stream = sys.stderr
        super().emit(record)


def log_handler(log_format: LogFormat, stream: TextIO | None = None) -> ServiceLogHandler:
    handler = ServiceLogHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    return handler


def configure_logging(log_format: LogFormat, level: int = logging.WARNING) -> None:
    """Log to stderr in `log_format`; calling it again replaces the handler it installed."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, ServiceLogHandler)]:
        root.removeHandler(handler)
    root.addHandler(log_handler(log_format))
    root.setLevel(level)
    send_server_logs_through_root()


def send_server_logs_through_root() -> None:
    """Once configure_logging has run, uvicorn's lines go through its handler too, so that
    every line has the same format. A no-op where something else configures logging."""
    if not any(isinstance(handler, ServiceLogHandler) for handler in logging.getLogger().handlers):
        return
    for name in SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True


{%- if cookiecutter.use_fastapi %}


def server_log_config(log_format: LogFormat) -> dict[str, Any]:
    """uvicorn's `log_config`: its loggers write through the service's handler, in
    `log_format`. uvicorn applies it as it starts, in each worker process of
    `serve --workers` too, before its first line there."""
    handler = {"()": log_handler, "log_format": log_format}
    through_service = {"handlers": ["service"], "level": "INFO", "propagate": False}
    return {
        "version": 1,
        # Loggers configured before (the project's own) keep their handlers and levels.
        "disable_existing_loggers": False,
        "handlers": {"service": handler},
        "loggers": {
            "uvicorn": through_service,
            # Through "uvicorn", as in uvicorn's own config.
            "uvicorn.error": {"handlers": [], "level": "INFO", "propagate": True},
            "uvicorn.access": through_service,
        },
    }
{%- endif %}


def configure_logging_at_startup(log_format: LogFormat) -> None:
    """For the application's start-up: configure logging where nothing has yet, as
    logging.basicConfig would (a worker process of `serve --workers`, `uvicorn --factory`),
    and send uvicorn's lines, from then on, through the same handler."""
    if not logging.getLogger().handlers:
        configure_logging(log_format)
    send_server_logs_through_root()
