"""Log lines carry time, level, logger and request id, as text or as one JSON object each."""

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime

import pytest
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.logs import (
    SERVER_LOGGERS,
    JsonFormatter,
    LogFormat,
    ServiceLogHandler,
    configure_logging,
    configure_logging_at_startup,
    current_request_id,
    log_handler,
)
from {{ cookiecutter.package_name }}.settings import Settings

TEXT_LINE = re.compile(
    r"(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00) "
    r"(?P<level>[A-Z]+) (?P<logger>\S+) \[(?P<request_id>[^\]]+)\] (?P<message>.*)"
)


def log_lines(log_format: LogFormat, request_id: str | None = None) -> list[str]:
    """What one warning and one error with a traceback look like in `log_format`."""
    stream = io.StringIO()
    logger = logging.getLogger("tests.logs")
    handler = log_handler(log_format, stream)
    logger.addHandler(handler)
    token = current_request_id.set(request_id)
    try:
        logger.warning("disk %s%% full", 91)
        try:
            raise ValueError("bad value")
        except ValueError:
            logger.exception("could not go on")
    finally:
        current_request_id.reset(token)
        logger.removeHandler(handler)
    return stream.getvalue().splitlines()


def test_a_text_line_has_time_level_logger_and_request_id() -> None:
    first, second, *traceback = log_lines("text", request_id="req-1")
    match = TEXT_LINE.fullmatch(first)
    assert match is not None, first
    assert datetime.fromisoformat(match["time"]).tzinfo is not None
    assert (match["level"], match["logger"], match["request_id"], match["message"]) == (
        "WARNING",
        "tests.logs",
        "req-1",
        "disk 91% full",
    )
    assert second.endswith("ERROR tests.logs [req-1] could not go on")
    assert traceback[-1] == "ValueError: bad value"


def test_a_line_outside_any_request_says_so() -> None:
    match = TEXT_LINE.fullmatch(log_lines("text")[0])
    assert match is not None
    assert match["request_id"] == "-"


def test_json_is_one_object_per_line_traceback_included() -> None:
    warning, error = (json.loads(line) for line in log_lines("json", request_id="req-2"))
    assert datetime.fromisoformat(warning["time"]).tzinfo is not None
    assert warning == {
        "time": warning["time"],
        "level": "WARNING",
        "logger": "tests.logs",
        "request_id": "req-2",
        "message": "disk 91% full",
    }
    assert error["message"] == "could not go on"
    assert error["exception"].startswith("Traceback")
    assert error["exception"].endswith("ValueError: bad value")


@pytest.fixture
def root_logging() -> Iterator[logging.Logger]:
    """The root and server loggers, put back as they were after the test."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    servers = [logging.getLogger(name) for name in SERVER_LOGGERS]
    saved_servers = [(server.handlers[:], server.propagate) for server in servers]
    try:
        yield root
    finally:
        root.handlers[:], root.level = saved
        for server, (handlers, propagate) in zip(servers, saved_servers, strict=True):
            server.handlers[:], server.propagate = handlers, propagate


def test_configuring_again_replaces_the_handler(root_logging: logging.Logger) -> None:
    server = logging.getLogger(SERVER_LOGGERS[0])
    server.addHandler(logging.NullHandler())
    server.propagate = False
    configure_logging("text")
    configure_logging("json")
    installed = [h for h in root_logging.handlers if isinstance(h, ServiceLogHandler)]
    assert len(installed) == 1
    assert isinstance(installed[0].formatter, JsonFormatter)
    # The server's lines go through the same handler, in the same format.
    assert server.handlers == []
    assert server.propagate


def test_start_up_configures_only_where_nothing_has(root_logging: logging.Logger) -> None:
    root_logging.handlers[:] = [elsewhere := logging.NullHandler()]
    configure_logging_at_startup("json")
    assert root_logging.handlers == [elsewhere]
    root_logging.handlers[:] = []
    configure_logging_at_startup("json")
    [installed] = root_logging.handlers
    assert isinstance(installed, ServiceLogHandler)
    assert isinstance(installed.formatter, JsonFormatter)


def test_log_format_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert Settings().log_format == "text"
    monkeypatch.setenv("LOG_FORMAT", "json")
    assert Settings().log_format == "json"
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ValidationError, match="LOG_FORMAT"):
        Settings()
