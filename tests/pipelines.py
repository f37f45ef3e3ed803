"""Run a rendered project's CI job on this machine the way its runner would.

There is no Docker engine here, so the pieces a runner provides are emulated by
their effect: the job's variables as the file sets them; a real PostgreSQL with
password authentication on 127.0.0.1:5432 as the service container; stand-ins
for the steps that only prepare the machine (actions/checkout, setup-uv,
`sudo`, `apt-get`); and for GitLab a private mount namespace in which the
service's alias resolves to 127.0.0.1 and PostgreSQL's server binaries are
hidden, as they are in a `python:X-slim` image. The steps that matter run as
written, each in bash in the project folder, in order.

Not reproduced: the service's PostgreSQL version (this machine's 15 serves
whatever image tag the file names); GitLab's `cache:` (every job starts with an
empty cache, as a pipeline's first run does); the runner's account (steps run
as whoever runs the tests: root here, as in GitLab's image, where GitHub uses
an account with sudo); GitLab's single shell for all script lines (each line
gets a shell of its own, so a line must not rely on an earlier line's `cd` or
`export`).
"""

import contextlib
import fcntl
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from tests.commands import HIDE_SYSTEM_POSTGRES, in_mount_namespace

SERVER_BINDIR = Path("/usr/lib/postgresql/15/bin")
SERVER_ADDRESS = "127.0.0.1"
SERVER_PORT = 5432
SUPERUSER = "postgres"
# Every job on this machine publishes its service on the same port: one job at a time.
SERVICE_LOCK = Path(tempfile.gettempdir()) / f"template-pipeline-service-{SERVER_PORT}.lock"
STEP_TIMEOUT_SECONDS = 1800
# What a runner's environment would not have: this test process's own settings.
NOT_INHERITED = {"VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH", "DATABASE_URL", "PGBOUNCER"}
NOT_INHERITED_PREFIXES = ("PYTEST_", "PG", "UV_", "TEST_DATABASE", "REQUIRE_")
GITLAB_GLOBAL_KEYWORDS = {
    "default",
    "include",
    "stages",
    "variables",
    "workflow",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
}
# Run in the GitLab job's namespace: nothing the harness searches finds a server.
HIDDEN_SERVER_PROBE = """
if command -v initdb || command -v postgres; then exit 1; fi
bindir=$(pg_config --bindir 2>/dev/null || true)
if [ -n "$bindir" ] && [ -e "$bindir/initdb" ]; then echo "$bindir/initdb"; exit 1; fi
if ls /usr/lib/postgresql/*/bin/initdb; then exit 1; fi
"""


class UnsupportedPipeline(ValueError):
    """The CI file uses something this emulation does not know how to reproduce."""


@dataclass(frozen=True)
class Service:
    """The PostgreSQL service as the file declares it."""

    password: str
    port: int
    # Names the job reaches the service by, besides localhost.
    hostnames: tuple[str, ...]


@dataclass(frozen=True)
class Step:
    name: str
    command: str = ""
    action: str = ""
    inputs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    ci: str
    variables: Mapping[str, str]
    service: Service
    steps: list[Step]
    # The job image's Python (GitLab), or None when the job sets up its own.
    image_python: str | None = None
    # How the runner's shell runs each step.
    shell: tuple[str, ...] = ("bash", "-e", "-c")


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def plain_variables(raw: Mapping[str, Any], marker: str) -> dict[str, str]:
    """Variables as literal strings; refuse expressions the emulation would not expand."""
    variables = {}
    for name, value in raw.items():
        text = as_text(value["value"] if isinstance(value, dict) else value)
        if marker in text:
            raise UnsupportedPipeline(f"variable {name} uses an expression: {text!r}")
        variables[name] = text
    return variables


def only_item(items: Mapping[str, Any], what: str) -> tuple[str, Any]:
    if len(items) != 1:
        raise UnsupportedPipeline(f"expected one {what}, found {sorted(items)}")
    return next(iter(items.items()))


def is_postgres_image(image: str) -> bool:
    return image.split(":", 1)[0].rsplit("/", 1)[-1] == "postgres"


def github_job(workflow_file: Path) -> Job:
    workflow = yaml.safe_load(workflow_file.read_text())
    _, job = only_item(workflow["jobs"], "job")
    variables = plain_variables({**workflow.get("env", {}), **job.get("env", {})}, "${{")
    _, service = only_item(job.get("services", {}), "service")
    if not is_postgres_image(service["image"]):
        raise UnsupportedPipeline(f"service image {service['image']} is not PostgreSQL")
    published = [str(mapping).split(":") for mapping in service.get("ports", [])]
    if [SERVER_PORT, SERVER_PORT] not in [[int(part) for part in ports] for ports in published]:
        raise UnsupportedPipeline(f"the service must publish {SERVER_PORT}: {published}")
    steps = []
    for step in job["steps"]:
        unknown = set(step) - {"name", "run", "uses", "with"}
        if unknown:
            raise UnsupportedPipeline(f"step keys {sorted(unknown)} are not emulated: {step}")
        if "uses" in step:
            inputs = {key: as_text(value) for key, value in step.get("with", {}).items()}
            steps.append(Step(step.get("name", step["uses"]), action=step["uses"], inputs=inputs))
        else:
            steps.append(Step(step.get("name", step["run"]), command=step["run"]))
    password = plain_variables(service.get("env", {}), "${{")["POSTGRES_PASSWORD"]
    return Job(
        ci="github",
        variables=variables,
        service=Service(password=password, port=SERVER_PORT, hostnames=()),
        steps=steps,
        # GitHub's default shell when a step names none.
        shell=("bash", "-e", "-c"),
    )


def flattened(lines: Any) -> list[str]:
    """Script lines; YAML anchors may nest lists inside the list."""
    if isinstance(lines, str):
        return [lines]
    return [line for item in lines or [] for line in flattened(item)]


def gitlab_service_hostnames(service: str | Mapping[str, str]) -> tuple[str, str]:
    """The service's image and the hostnames GitLab gives it: its alias and its image name."""
    image = service if isinstance(service, str) else service["name"]
    names = [image.split(":", 1)[0].rsplit("/", 1)[-1]]
    if isinstance(service, Mapping) and service.get("alias"):
        names += [alias.strip() for alias in service["alias"].split(",")]
    return image, " ".join(dict.fromkeys(names))


def gitlab_job(pipeline_file: Path) -> Job:
    pipeline = yaml.safe_load(pipeline_file.read_text())
    jobs = {
        name: body
        for name, body in pipeline.items()
        if isinstance(body, dict)
        and not name.startswith(".")
        and name not in GITLAB_GLOBAL_KEYWORDS
    }
    _, job = only_item(jobs, "job")
    variables = plain_variables({**pipeline.get("variables", {}), **job.get("variables", {})}, "$")
    services = [gitlab_service_hostnames(item) for item in job.get("services", [])]
    postgres = [names for image, names in services if is_postgres_image(image)]
    if len(services) != 1 or not postgres:
        raise UnsupportedPipeline(f"expected one PostgreSQL service, found {services}")
    image = job.get("image") or pipeline.get("image", "")
    python = re.fullmatch(r"python:(\d+\.\d+)(-slim)?", image)
    if python is None:
        raise UnsupportedPipeline(f"image {image!r} is not a python:X or python:X-slim image")
    lines = flattened(job.get("before_script", pipeline.get("before_script"))) + flattened(
        job["script"]
    )
    return Job(
        ci="gitlab",
        variables=variables,
        # GitLab hands the job's variables to its services too.
        service=Service(
            password=variables["POSTGRES_PASSWORD"],
            port=SERVER_PORT,
            hostnames=tuple(postgres[0].split()),
        ),
        steps=[Step(line, command=line) for line in lines],
        image_python=python.group(1),
        # The shell GitLab's runner starts its scripts with.
        shell=("bash", "-e", "-o", "pipefail", "-c"),
    )


def read_job(project: Path) -> Job:
    """The project's one CI job, from whichever CI file it has."""
    workflow = project / ".github" / "workflows" / "ci.yml"
    pipeline = project / ".gitlab-ci.yml"
    if workflow.is_file():
        return github_job(workflow)
    if pipeline.is_file():
        return gitlab_job(pipeline)
    raise UnsupportedPipeline(f"{project} has no CI file")


def as_server_account() -> dict[str, Any]:
    """subprocess options that run PostgreSQL as `postgres` when we are root, which it refuses."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def hand_over(path: Path, account: Mapping[str, Any]) -> None:
    if account:
        os.chown(path, account["user"], account["group"])


@dataclass(frozen=True)
class RunningService:
    """Admin access, over TCP with the password, to the service a job uses."""

    port: int
    password: str

    def query(
        self, statement: str, password: str | None = None, database: str = "postgres"
    ) -> subprocess.CompletedProcess[str]:
        environment = {
            "PATH": os.environ["PATH"],
            "PGPASSWORD": self.password if password is None else password,
            "PGCONNECT_TIMEOUT": "10",
        }
        return subprocess.run(
            [
                str(SERVER_BINDIR / "psql"),
                f"--host={SERVER_ADDRESS}",
                f"--port={self.port}",
                f"--username={SUPERUSER}",
                f"--dbname={database}",
                "--no-psqlrc",
                "--tuples-only",
                "--no-align",
                f"--command={statement}",
            ],
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )

    def databases(self) -> list[str]:
        result = self.query("SELECT datname FROM pg_database ORDER BY datname")
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    def roles(self) -> list[str]:
        result = self.query("SELECT rolname FROM pg_roles ORDER BY rolname")
        assert result.returncode == 0, result.stderr
        return result.stdout.split()


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((SERVER_ADDRESS, port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def wait_until_ready(process: subprocess.Popen[bytes], datadir: Path, log: Path) -> None:
    # postmaster.pid's 8th line turns "ready" once the server accepts connections.
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the PostgreSQL service exited:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(FileNotFoundError):
            lines = (datadir / "postmaster.pid").read_text().splitlines()
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the PostgreSQL service never got ready:\n{log.read_text()[-3000:]}"
            )
        time.sleep(0.05)


@contextlib.contextmanager
def postgres_service(
    service: Service, folder: Path, lock: Path | None = SERVICE_LOCK
) -> Iterator[RunningService]:
    """A fresh server on 127.0.0.1 at the service's port, superuser password as the file sets.

    `folder` must be traversable by the postgres account. The port is held for
    the whole block under `lock`, so concurrent jobs wait for each other; None for
    a port of the caller's own.
    """
    account = as_server_account()
    folder.mkdir(mode=0o700)
    password_file = folder / "password"
    password_file.write_text(service.password + "\n")
    hand_over(folder, account)
    hand_over(password_file, account)
    datadir = folder / "data"
    log = folder / "postgres.log"
    with exclusive(lock) if lock is not None else contextlib.nullcontext():
        if not port_is_free(service.port):
            raise RuntimeError(
                f"port {service.port} is taken by something other than a pipeline job"
            )
        subprocess.run(
            [
                str(SERVER_BINDIR / "initdb"),
                f"--pgdata={datadir}",
                f"--username={SUPERUSER}",
                f"--pwfile={password_file}",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
                "--no-instructions",
            ],
            cwd="/",
            capture_output=True,
            check=True,
            **account,
        )
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                [
                    str(SERVER_BINDIR / "postgres"),
                    f"-D{datadir}",
                    f"-p{service.port}",
                    f"-clisten_addresses={SERVER_ADDRESS}",
                    f"-cunix_socket_directories={folder}",
                    # Durability is not what a pipeline run tests; fsync makes every CREATE
                    # DATABASE of the suite slower.
                    "-cfsync=off",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd="/",
                start_new_session=True,
                **account,
            )
        try:
            wait_until_ready(process, datadir, log)
            yield RunningService(port=service.port, password=service.password)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


SUDO = """#!/bin/sh
# sudo stand-in: the job already runs as root.
case "$1" in -*) echo "sudo options are not emulated: $*" >&2; exit 1;; esac
exec "$@"
"""
APT_GET = """#!/bin/sh
# apt-get stand-in: this machine's packages are fixed; installing only checks they are there.
case "$1" in
  update) exit 0 ;;
  install)
    shift
    for package in "$@"; do
      case "$package" in -*) continue ;; esac
      if ! dpkg -s "$package" >/dev/null 2>&1; then
        echo "package $package is not installed" >&2
        exit 100
      fi
    done ;;
  *) echo "apt-get $1 is not emulated" >&2; exit 1 ;;
esac
"""


@dataclass
class Machine:
    """What the runner gives a job: its environment, and how each step's shell starts."""

    environment: dict[str, str]
    wrap: Callable[[list[str]], list[str]] = list

    def prepend_path(self, folder: Path) -> None:
        self.environment["PATH"] = f"{folder}:{self.environment['PATH']}"


def runner_environment(job: Job) -> dict[str, str]:
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name not in NOT_INHERITED and not name.startswith(NOT_INHERITED_PREFIXES)
    }
    marker = {"github": "GITHUB_ACTIONS", "gitlab": "GITLAB_CI"}[job.ci]
    return {**inherited, "CI": "true", marker: "true", **job.variables}


def write_executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def private_namespace(hosts_file: Path) -> Callable[[list[str]], list[str]]:
    """Each step in its own mount namespace: the service's names resolve, server binaries gone."""
    setup = f"mount --bind {hosts_file} /etc/hosts && {HIDE_SYSTEM_POSTGRES}"
    return partial(in_mount_namespace, setup)


def prepare_machine(job: Job, folder: Path) -> Machine:
    """The job's environment with the stand-ins first on PATH.

    For GitLab also the image's Python and the private namespace.
    """
    folder.mkdir()
    stand_ins = folder / "bin"
    stand_ins.mkdir()
    write_executable(stand_ins / "sudo", SUDO)
    write_executable(stand_ins / "apt-get", APT_GET)
    machine = Machine(runner_environment(job))
    machine.prepend_path(stand_ins)
    if job.image_python is not None:
        # The image's own Python, with pip, so `pip install uv` really installs uv.
        interpreter = shutil.which(f"python{job.image_python}")
        if interpreter is None:
            raise UnsupportedPipeline(f"python{job.image_python} is not installed here")
        image_python = folder / "image-python"
        subprocess.run([interpreter, "-m", "venv", str(image_python)], check=True)
        machine.prepend_path(image_python / "bin")
        hosts = folder / "hosts"
        names = " ".join(job.service.hostnames)
        hosts.write_text(Path("/etc/hosts").read_text() + f"\n{SERVER_ADDRESS} {names}\n")
        machine.wrap = private_namespace(hosts)
    return machine


def set_up_action(step: Step, machine: Machine, uv: Path, folder: Path) -> None:
    """Do what a `uses:` action does to the machine, or refuse an unknown one."""
    action, _, _ = step.action.partition("@")
    if action == "actions/checkout":
        unknown = set(step.inputs)
    elif action == "astral-sh/setup-uv":
        unknown = set(step.inputs) - {"python-version"}
        uv_folder = folder / "setup-uv"
        uv_folder.mkdir(exist_ok=True)
        for tool in ("uv", "uvx"):
            (uv_folder / tool).unlink(missing_ok=True)
            (uv_folder / tool).symlink_to(uv.with_name(tool))
        machine.prepend_path(uv_folder)
        if "python-version" in step.inputs:
            machine.environment["UV_PYTHON"] = step.inputs["python-version"]
    else:
        raise UnsupportedPipeline(f"action {step.action} is not emulated")
    if unknown:
        raise UnsupportedPipeline(f"{step.action} inputs {sorted(unknown)} are not emulated")


@dataclass(frozen=True)
class StepResult:
    name: str
    returncode: int
    seconds: float
    output: str


@dataclass
class JobResult:
    steps: list[StepResult] = field(default_factory=list)

    @property
    def failed(self) -> StepResult | None:
        return next((step for step in self.steps if step.returncode != 0), None)

    def timings(self) -> str:
        """Each step's time and last line of output (pytest's summary, for one)."""
        lines = []
        for step in self.steps:
            last_line = (step.output.strip().splitlines() or [""])[-1]
            lines.append(f"{step.seconds:7.1f} s  {step.name}  | {last_line}")
        total = sum(step.seconds for step in self.steps)
        return "\n".join([*lines, f"{total:7.1f} s  in all"])

    def failure_report(self, tail: int = 20000) -> str:
        step = self.failed
        if step is None:
            return "every step passed"
        return f"step {step.name!r} failed with exit code {step.returncode}:\n{step.output[-tail:]}"


def run_in_job(job: Job, machine: Machine, project: Path, name: str, command: str) -> StepResult:
    started = time.monotonic()
    # Its own process group, so a step that times out is stopped with everything it started.
    process = subprocess.Popen(
        machine.wrap([*job.shell, command]),
        cwd=project,
        env=machine.environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=STEP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        output = f"timed out after {STEP_TIMEOUT_SECONDS} s\n{output}"
    return StepResult(name, process.returncode, time.monotonic() - started, output)


def run_job(job: Job, machine: Machine, project: Path, uv: Path, folder: Path) -> JobResult:
    """Run the steps in order in `project`, stopping at the first that fails."""
    result = JobResult()
    for step in job.steps:
        if step.action:
            set_up_action(step, machine, uv, folder)
            result.steps.append(StepResult(step.name, 0, 0.0, "emulated"))
            continue
        outcome = run_in_job(job, machine, project, step.name, step.command)
        result.steps.append(outcome)
        if outcome.returncode != 0:
            break
    return result
