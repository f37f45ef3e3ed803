"""`serve` as a process: every line it writes, uvicorn's included, is in LOG_FORMAT, in
the parent process and in each worker of `serve --workers`, from start to shutdown."""

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.faults import free_port

# A generous bound on start-up and shutdown: a process past it is killed.
PROCESS_SECONDS = 60


def started_lines(service: "subprocess.Popen[str]", workers: int) -> list[str]:
    """What `service` wrote until it listened and each of its `workers` had started up."""
    assert service.stdout is not None
    lines: list[str] = []

    def started() -> bool:
        listening = any("Uvicorn running on" in line for line in lines)
        started_up = sum("Application startup complete" in line for line in lines)
        return listening and started_up == workers

    while not started():
        line = service.stdout.readline()
        assert line, f"serve exited before its workers started:\n{''.join(lines)}"
        lines.append(line)
    return lines


def parsed(line: str, output: str) -> dict[str, Any]:
    try:
        entry: dict[str, Any] = json.loads(line)
    except json.JSONDecodeError:
        pytest.fail(f"not a JSON line: {line!r} in:\n{output}")
    return entry


# Two workers as Kubernetes starts them (deploy/kubernetes): WEB_CONCURRENCY, the URL in a file.
@pytest.mark.parametrize(
    ("workers", "as_kubernetes_does"), [(1, False), (2, True)], ids=["1-worker", "2-workers-k8s"]
)
def test_every_line_of_serve_is_json_with_log_format_json(
    postgres_url: str, tmp_path: Path, workers: int, as_kubernetes_does: bool
) -> None:
    port = free_port()
    environment = {**os.environ, "LOG_FORMAT": "json"}
    command = ["serve", "--port", str(port)]
    if as_kubernetes_does:
        url_file = tmp_path / "database-url"
        url_file.write_text(postgres_url + "\n")
        environment |= {"DATABASE_URL_FILE": str(url_file), "WEB_CONCURRENCY": str(workers)}
        environment.pop("DATABASE_URL", None)
    else:
        environment["DATABASE_URL"] = postgres_url
        command += ["--workers", str(workers)]
    service = subprocess.Popen(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}", *command],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # Reading blocks: a service that hangs is killed, which ends what there is to read.
    watchdog = threading.Timer(PROCESS_SECONDS, service.kill)
    watchdog.start()
    try:
        lines = started_lines(service, workers)
        # One request, for an access line.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=10) as answer:
            assert answer.status == 200
    finally:
        service.send_signal(signal.SIGTERM)
        rest, _ = service.communicate(timeout=PROCESS_SECONDS)
        watchdog.cancel()
    output = "".join(lines) + rest
    assert service.returncode == 0, output
    entries = [parsed(line, output) for line in output.splitlines()]
    messages = [(entry["logger"], entry["message"]) for entry in entries]

    def count(logger: str, start: str) -> int:
        return sum(name == logger and text.startswith(start) for name, text in messages)

    for each_worker in (
        "Started server process",
        "Waiting for application startup.",
        "Application startup complete.",
        "Waiting for application shutdown.",
        "Finished server process",
    ):
        assert count("uvicorn.error", each_worker) == workers, output
    assert count("uvicorn.error", f"Uvicorn running on http://127.0.0.1:{port}") == 1, output
    assert count("uvicorn.access", "127.0.0.1:") == 1, output
    assert all(entry["request_id"] for entry in entries)
