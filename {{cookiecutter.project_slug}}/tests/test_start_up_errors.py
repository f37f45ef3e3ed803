"""A command that cannot start says why in one log line per problem, and exits non-zero:
each bad setting by its environment variable."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import cli
from {{ cookiecutter.package_name }}.logs import ServiceLogHandler, TextFormatter
from {{ cookiecutter.package_name }}.settings import get_settings

COMMANDS = [
    ["migrate"],
    ["revision", "--autogenerate", "-m", "refused"],
{%- if cookiecutter.use_fastapi %}
    ["serve", "--port", "0"],
{%- endif %}
]
TWO_BAD_SETTINGS = {"DB_POOL_SIZE": "0", "DB_STATEMENT_TIMEOUT_MS": "soon"}
TWO_LINES = [
    "DB_POOL_SIZE is not valid: input should be greater than or equal to 1",
    "DB_STATEMENT_TIMEOUT_MS is not valid: input should be a valid integer, "
    "unable to parse string as an integer",
]


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from a folder with no .env, with none of the settings set."""
    monkeypatch.chdir(tmp_path)
    for variable in ("DATABASE_URL", "DATABASE_REPLICA_URLS", "LOG_FORMAT"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


def run_cli(*argv: str) -> int:
    get_settings.cache_clear()
    try:
        return cli.main(list(argv))
    finally:
        get_settings.cache_clear()


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command[0])
def test_two_bad_settings_are_two_lines_naming_their_variables(
    elsewhere: Path,
    command: list[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for variable, value in TWO_BAD_SETTINGS.items():
        monkeypatch.setenv(variable, value)
    with caplog.at_level(logging.INFO):
        assert run_cli(*command) == 1
    assert errors_logged(caplog) == TWO_LINES
    # Nothing started: no private PostgreSQL for a command that could not have used it.
    assert not (elsewhere / cli.EMBEDDED_DIR).exists()


def test_bad_settings_are_logged_in_the_log_format_asked_for(elsewhere: Path) -> None:
    # Asked for in .env, read all the same.
    (elsewhere / ".env").write_text("LOG_FORMAT=json\n")
    environment = {**os.environ, **TWO_BAD_SETTINGS}
    result = subprocess.run(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}", "migrate"],
        cwd=elsewhere,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(entry["level"], entry["message"]) for entry in entries] == [
        ("ERROR", line) for line in TWO_LINES
    ]


def test_a_bad_log_format_is_reported_as_text(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with caplog.at_level(logging.ERROR):
        assert run_cli("migrate") == 1
    assert errors_logged(caplog) == ["LOG_FORMAT is not valid: input should be 'text' or 'json'"]
    [installed] = [h for h in logging.getLogger().handlers if isinstance(h, ServiceLogHandler)]
    assert isinstance(installed.formatter, TextFormatter)
