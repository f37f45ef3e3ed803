"""Slow tier: the overlays' migrate Job and Deployment, run as written, without a cluster.

There is no Kubernetes here, so each pod is rehearsed by what it runs: the container's
command and args from the project's virtualenv (installed as the image installs it,
with an interpreter any account may run, as the image's is), in the project folder
(its WORKDIR), with the environment the overlay gives it (the ConfigMap its envFrom
names, then its own env) and its Secret volume written into a folder as the kubelet
writes it (only the volume's items, with the volume's mode and the pod's fsGroup). The
process runs as the pod's runAsUser, runAsGroup and fsGroup, without new privileges, in
a mount namespace where the root filesystem is read-only and each emptyDir is a fresh
tmpfs. The namespace's `postgres` Service is a local server with the Secret's two
roles: the owner, which owns the database, and the service's, which may only log in.
The prod overlay names no Secret (it comes from a secret store): its pods get dev's.

Changed from the manifests, because the pods share this machine: the *_FILE variables
name the folder written instead of the mount path; the URLs name the local server's
address and port instead of `postgres:5432`; `serve` listens on the loopback address
at a port of its own instead of every address's 8000. The rollout stands in for
kube-proxy with a round-robin TCP proxy, and shortens preStop's pause.
"""

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.commands import in_mount_namespace, run
from tests.kubernetes import Manifest, container, kustomize, the
from tests.pipelines import SERVER_ADDRESS, RunningService, Service, postgres_service

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run pods as their own account"),
]

# The host of the dev Secret's URLs: the namespace's PostgreSQL Service.
DATABASE_SERVICE = "postgres"
SUPERUSER_PASSWORD = "rehearsal"
# The image's PATH after its virtualenv's bin.
IMAGE_PATH = "/usr/local/bin:/usr/bin:/bin"
# What the kubelet gives a Secret's files when the volume names no mode.
DEFAULT_SECRET_MODE = 0o644
# The manifest's 10 s pause only has to outlast the endpoint removal's spread through
# the cluster; the proxy here drops the pod at once.
PRE_STOP_PAUSE_SECONDS = 1.0
# Requests the client makes before a pod of the rollout is stopped, and again after.
REQUESTS_PER_PHASE = 100
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
# A generous bound for anything that should take a moment.
PATIENCE_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((SERVER_ADDRESS, 0))
        port: int = probe.getsockname()[1]
        return port


def get(url: str, timeout: float) -> tuple[int, bytes]:
    """The status and body of GET `url`, errors included; OSError when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def pod_spec(workload: Manifest) -> Manifest:
    return dict(workload["spec"]["template"]["spec"])


def as_the_pod(workload: Manifest, command: list[str]) -> list[str]:
    """`command` run as the pod's account, without new privileges, on a read-only root
    filesystem with a fresh tmpfs for each emptyDir the container mounts."""
    pod, main = pod_spec(workload), container(workload)
    empty_dirs = {volume["name"] for volume in pod["volumes"] if "emptyDir" in volume}
    setup = [
        f"mount -t tmpfs -o mode=0777 tmpfs {mount['mountPath']}"
        for mount in main.get("volumeMounts", [])
        if mount["name"] in empty_dirs
    ]
    if main["securityContext"].get("readOnlyRootFilesystem"):
        setup.append("mount -o remount,bind,ro /")
    account = pod["securityContext"]
    user = [
        "setpriv",
        f"--reuid={account['runAsUser']}",
        f"--regid={account['runAsGroup']}",
        f"--groups={account['fsGroup']}",
    ]
    if main["securityContext"].get("allowPrivilegeEscalation") is False:
        user.append("--no-new-privs")
    return in_mount_namespace(" && ".join(setup) or "true", [*user, *command])


def serving_on(arguments: list[str], port: int, container_port: int) -> list[str]:
    """serve's arguments with this machine's stand-in for the pod's address: the loopback
    address, at a port of its own."""
    changed = list(arguments)
    given = changed.index("--port") + 1
    assert int(changed[given]) == container_port, "serve listens where the probes do not look"
    changed[given] = str(port)
    changed[changed.index("--host") + 1] = SERVER_ADDRESS
    return changed


def tcp_ports(pid: int, remote_port: int) -> set[int]:
    """The local ports of the process's TCP connections to `remote_port` (pg_stat_activity's
    client_port for a connection to the server)."""
    sockets = {
        target.removeprefix("socket:[").removesuffix("]")
        for fd in Path(f"/proc/{pid}/fd").iterdir()
        if (target := os.readlink(fd)).startswith("socket:[")
    }
    ports = set()
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        _, local, remote, *_, inode = line.split()[:10]
        if inode in sockets and int(remote.rpartition(":")[2], 16) == remote_port:
            ports.add(int(local.rpartition(":")[2], 16))
    return ports


@dataclass
class Pod:
    """A running pod of the Deployment: its process, and the port that stands for its own."""

    process: subprocess.Popen[bytes]
    port: int
    main: Manifest
    environment: dict[str, str]
    secret_files: Path
    log: Path

    def probe(self, name: str) -> tuple[int, bytes]:
        """The container's probe `name`, with its path, port and timeout."""
        check = self.main[name]
        target = check["httpGet"]["port"]
        # By name or number, the container's port: the one serving_on found serve's --port at.
        ports = {port["name"]: port["containerPort"] for port in self.main["ports"]}
        assert ports.get(target, target) in ports.values()
        url = f"http://{SERVER_ADDRESS}:{self.port}{check['httpGet']['path']}"
        return get(url, timeout=check["timeoutSeconds"])

    def wait_until_started(self) -> None:
        """Until the startup probe passes, within the time its threshold allows. Probed
        more often than its period, which would only make the test slower."""
        check = self.main["startupProbe"]
        deadline = time.monotonic() + check["periodSeconds"] * check["failureThreshold"]
        while True:
            assert self.process.poll() is None, f"the pod exited:\n{self.log.read_text()}"
            with contextlib.suppress(OSError):
                if self.probe("startupProbe")[0] == 200:
                    return
            assert time.monotonic() < deadline, f"never started:\n{self.log.read_text()}"
            time.sleep(0.05)

    def terminate(self, seconds: float) -> int | None:
        """SIGTERM, then `seconds` to exit before SIGKILL; the exit code, None when killed."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            return None


@dataclass(frozen=True)
class Cluster:
    """An overlay's objects, run on this machine against `server`."""

    project: Path
    objects: list[Manifest]
    server: RunningService
    folder: Path

    def secret(self, name: str) -> dict[str, str]:
        (secret,) = (
            item
            for item in self.objects
            if item["kind"] == "Secret" and item["metadata"]["name"] == name
        )
        return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}

    def at_the_server(self, url: str) -> str:
        """A URL of the Secret with the local server in place of the `postgres` Service."""
        parts = urlsplit(url)
        assert parts.hostname == DATABASE_SERVICE, url
        credentials = parts.netloc.rpartition("@")[0]
        return urlunsplit(
            parts._replace(netloc=f"{credentials}@{SERVER_ADDRESS}:{self.server.port}")
        )

    def database(self) -> str:
        return urlsplit(self.secret_urls()["database-url"]).path.lstrip("/")

    def secret_urls(self) -> dict[str, str]:
        (volume,) = (v for v in pod_spec(the(self.objects, "Job"))["volumes"] if "secret" in v)
        return self.secret(volume["secret"]["secretName"])

    def query(self, statement: str) -> str:
        """`statement` as the superuser in the service's database; its answer."""
        result = self.server.query(statement, database=self.database())
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def fresh_database(self) -> None:
        """The Secret's database, empty, owned by the role of its migration URL."""
        owner = urlsplit(self.secret_urls()["migration-url"]).username
        for statement in (
            f'DROP DATABASE IF EXISTS "{self.database()}" WITH (FORCE)',
            f'CREATE DATABASE "{self.database()}" OWNER "{owner}"',
        ):
            result = self.server.query(statement)
            assert result.returncode == 0, result.stderr

    def write_secret_volume(self, workload: Manifest, folder: Path) -> tuple[str, Path]:
        """The container's Secret volume as files in `folder`; its mount path and the folder."""
        pod = pod_spec(workload)
        (volume,) = (v for v in pod["volumes"] if "secret" in v)
        (mount,) = (m for m in container(workload)["volumeMounts"] if m["name"] == volume["name"])
        source = volume["secret"]
        data = self.secret(source["secretName"])
        items = source.get("items", [{"key": key, "path": key} for key in data])
        folder.mkdir(mode=0o755)
        for item in items:
            path = folder / item["path"]
            path.write_text(self.at_the_server(data[item["key"]]))
            os.chown(path, 0, pod["securityContext"]["fsGroup"])
            path.chmod(item.get("mode", source.get("defaultMode", DEFAULT_SECRET_MODE)))
        return mount["mountPath"], folder

    def environment(self, workload: Manifest, mount_path: str, files: Path) -> dict[str, str]:
        """The container's environment: the image's PATH, the ConfigMaps of its envFrom,
        then its env; the *_FILE variables pointed from the mount path to `files`."""
        main = container(workload)
        # Otherwise Kubernetes adds variables for every Service of the namespace.
        assert pod_spec(workload)["enableServiceLinks"] is False
        environment = {"PATH": f"{self.project / '.venv' / 'bin'}:{IMAGE_PATH}"}
        for source in main.get("envFrom", []):
            name = source["configMapRef"]["name"]
            (config_map,) = (
                item
                for item in self.objects
                if item["kind"] == "ConfigMap" and item["metadata"]["name"] == name
            )
            environment.update(config_map["data"])
        environment.update(
            {variable["name"]: variable["value"] for variable in main.get("env", [])}
        )
        for name, value in environment.items():
            if name.endswith("_FILE"):
                assert value.startswith(f"{mount_path}/"), f"{name}={value} is not mounted"
                environment[name] = str(files / value.removeprefix(f"{mount_path}/"))
        return environment

    def prepare(self, workload: Manifest) -> tuple[Path, Path, dict[str, str]]:
        """A folder of the pod's own, its Secret's files and its environment."""
        folder = Path(tempfile.mkdtemp(prefix="pod-", dir=self.folder))
        folder.chmod(0o755)
        mount_path, files = self.write_secret_volume(workload, folder / "secret")
        return folder, files, self.environment(workload, mount_path, files)

    def command(self, workload: Manifest) -> list[str]:
        main = container(workload)
        executable, *arguments = [*main["command"], *main.get("args", [])]
        return [str(self.project / ".venv" / "bin" / executable), *arguments]

    def migrate(self) -> None:
        """The Job's pod, run to its end; it must succeed."""
        job = the(self.objects, "Job")
        _, _, environment = self.prepare(job)
        finished = subprocess.run(
            as_the_pod(job, self.command(job)),
            cwd=self.project,
            env=environment,
            capture_output=True,
            text=True,
            timeout=job["spec"]["activeDeadlineSeconds"],
            check=False,
        )
        assert finished.returncode == 0, finished.stderr

    @contextlib.contextmanager
    def pod(self) -> Iterator[Pod]:
        """A pod of the Deployment, started; stopped at the end if it still runs."""
        deployment = the(self.objects, "Deployment")
        main = container(deployment)
        folder, files, environment = self.prepare(deployment)
        (http,) = main["ports"]
        port = free_port()
        executable, *arguments = self.command(deployment)
        command = [executable, *serving_on(arguments, port, http["containerPort"])]
        log = folder / "pod.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                as_the_pod(deployment, command),
                cwd=self.project,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        pod = Pod(process, port, main, environment, files, log)
        try:
            yield pod
        finally:
            if process.poll() is None:
                pod.terminate(pod_spec(deployment)["terminationGracePeriodSeconds"])

    def service_connections(self, where: str = "TRUE") -> int:
        """The connections of DATABASE_URL's role on the server that match `where`."""
        role = urlsplit(self.secret_urls()["database-url"]).username
        return int(
            self.query(
                f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{role}' AND {where}"
            )
        )

    def settles(self, where: str, expected: int) -> int:
        """The count of service connections matching `where` once it reaches `expected`, or
        its last value after a generous wait: a closed connection's backend ends soon after."""
        deadline = time.monotonic() + PATIENCE_SECONDS
        while (count := self.service_connections(where)) != expected:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return count


@pytest.fixture(scope="module")
def cluster(installed_project: Path) -> Iterator[Cluster]:
    objects = kustomize(installed_project / "deploy" / "kubernetes" / "overlays" / "dev")
    folder = Path(tempfile.mkdtemp(prefix="template-kubernetes-", dir="/var/tmp"))
    folder.chmod(0o755)
    try:
        service = Service(password=SUPERUSER_PASSWORD, port=free_port(), hostnames=())
        with postgres_service(service, folder / "postgres", lock=None) as server:
            cluster = Cluster(installed_project, objects, server, folder)
            for url in cluster.secret_urls().values():
                parts = urlsplit(url)
                created = server.query(
                    f"CREATE ROLE \"{parts.username}\" LOGIN PASSWORD '{parts.password}'"
                )
                assert created.returncode == 0, created.stderr
            yield cluster
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def dev(cluster: Cluster) -> Cluster:
    """The cluster with its database just created: no migration has run."""
    cluster.fresh_database()
    return cluster


def heads(project: Path) -> set[str]:
    listed = run(project, str(project / ".venv" / "bin" / "alembic"), "heads").stdout
    return {line.split()[0] for line in listed.splitlines()}


def error_code(body: bytes) -> str:
    return str(json.loads(body)["error"]["code"])


class RoundRobin(socketserver.ThreadingTCPServer):
    """kube-proxy's part: each connection to the Service goes to the next endpoint in turn."""

    daemon_threads = True

    def __init__(self, ports: list[int]) -> None:
        super().__init__((SERVER_ADDRESS, 0), Relay)
        self.endpoints = list(ports)
        self.served: Counter[int] = Counter()
        self.turns = itertools.count()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{SERVER_ADDRESS}:{self.server_address[1]}"

    def next_endpoint(self) -> int:
        with self.lock:
            port = self.endpoints[next(self.turns) % len(self.endpoints)]
            self.served[port] += 1
            return port

    def remove(self, port: int) -> None:
        """The endpoint removal: new connections no longer reach the pod."""
        with self.lock:
            self.endpoints.remove(port)


def pump(source: socket.socket, target: socket.socket) -> None:
    while data := source.recv(65536):
        target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


class Relay(socketserver.BaseRequestHandler):
    server: RoundRobin

    def handle(self) -> None:
        endpoint = (SERVER_ADDRESS, self.server.next_endpoint())
        with socket.create_connection(endpoint) as upstream:
            onward = threading.Thread(target=pump, args=(self.request, upstream), daemon=True)
            onward.start()
            pump(upstream, self.request)
            onward.join()


@contextlib.contextmanager
def service_proxy(ports: list[int]) -> Iterator[RoundRobin]:
    with RoundRobin(ports) as proxy:
        serving = threading.Thread(target=proxy.serve_forever, daemon=True)
        serving.start()
        try:
            yield proxy
        finally:
            proxy.shutdown()


@dataclass
class Load:
    """GET requests one after another, each on a new connection, as fast as answers come."""

    url: str
    made: int = 0
    failures: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def send(self) -> None:
        while not self.done.is_set():
            try:
                status, body = get(self.url, timeout=PATIENCE_SECONDS)
            except OSError as error:
                status, body = 0, repr(error).encode()
            if status != 200:
                self.failures.append(f"request {self.made + 1}: {status} {body[:300]!r}")
            self.made += 1

    def wait_for(self, requests: int) -> None:
        deadline = time.monotonic() + PATIENCE_SECONDS
        while self.made < requests:
            assert time.monotonic() < deadline, f"{self.made} requests made, {requests} expected"
            time.sleep(0.01)


@contextlib.contextmanager
def requests_in_a_loop(url: str) -> Iterator[Load]:
    load = Load(url)
    sending = threading.Thread(target=load.send, daemon=True)
    sending.start()
    try:
        yield load
    finally:
        load.done.set()
        sending.join(PATIENCE_SECONDS)


def test_the_migrate_job_brings_a_new_database_to_head_as_the_owner(dev: Cluster) -> None:
    dev.migrate()
    assert set(dev.query("SELECT version_num FROM alembic_version").split()) == heads(dev.project)
    owner = urlsplit(dev.secret_urls()["migration-url"]).username
    owners = dev.query("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
    assert owners.split() == [owner]


def test_the_deployment_serves_as_the_service_role_and_passes_its_probes(
    dev: Cluster,
) -> None:
    dev.migrate()
    with dev.pod() as pod:
        pod.wait_until_started()
        for probe in PROBES:
            status, body = pod.probe(probe)
            assert status == 200, (probe, body, pod.log.read_text())
        # The Secret's owner URL is the Job's alone.
        assert [path.name for path in pod.secret_files.iterdir()] == ["database-url"]
        assert not [name for name in pod.environment if "MIGRATION" in name]
        package = container(the(dev.objects, "Deployment"))["command"][0]
        service = urlsplit(dev.secret_urls()["database-url"]).username
        users = dev.query(
            "SELECT DISTINCT usename FROM pg_stat_activity "
            f"WHERE application_name LIKE '{package}-%'"
        )
        assert users.split() == [service]


def test_a_pod_takes_no_traffic_until_the_migrate_job_ran(dev: Cluster) -> None:
    with dev.pod() as pod:
        pod.wait_until_started()
        status, body = pod.probe("readinessProbe")
        assert (status, error_code(body)) == (503, "schema_out_of_date")
        assert pod.probe("livenessProbe")[0] == 200
        dev.migrate()
        assert pod.probe("readinessProbe")[0] == 200


def test_a_rollout_takes_a_pod_away_without_failing_a_request(dev: Cluster) -> None:
    dev.migrate()
    grace = pod_spec(the(dev.objects, "Deployment"))["terminationGracePeriodSeconds"]
    with dev.pod() as leaving, dev.pod() as staying:
        leaving.wait_until_started()
        staying.wait_until_started()
        with (
            service_proxy([leaving.port, staying.port]) as proxy,
            requests_in_a_loop(f"{proxy.url}/users") as load,
        ):
            load.wait_for(REQUESTS_PER_PHASE)
            # As the kubelet stops a pod: out of the Service's endpoints, preStop, SIGTERM.
            proxy.remove(leaving.port)
            time.sleep(PRE_STOP_PAUSE_SECONDS)
            held = tcp_ports(leaving.process.pid, dev.server.port)
            signalled = time.monotonic()
            exit_code = leaving.terminate(grace - PRE_STOP_PAUSE_SECONDS)
            stopped_in = time.monotonic() - signalled
            load.wait_for(load.made + REQUESTS_PER_PHASE)
        print(
            f"rollout: {load.made} requests, {len(load.failures)} failed; the stopped pod served "
            f"{proxy.served[leaving.port]} and exited {stopped_in:.1f} s after SIGTERM"
        )
        assert load.failures == [], f"{len(load.failures)} of {load.made}: {load.failures[:5]}"
        assert proxy.served[leaving.port] > 0
        # None: killed when the grace period ran out.
        assert exit_code == 0, leaving.log.read_text()
        assert held, "the pod had no connection to the database"
        client_ports = ",".join(map(str, sorted(held)))
        assert dev.settles(f"client_port IN ({client_ports})", 0) == 0
    assert dev.settles("TRUE", 0) == 0


def test_the_prod_settings_run_workers_that_share_metrics_through_the_pods_tmp(
    cluster: Cluster,
) -> None:
    objects = kustomize(cluster.project / "deploy" / "kubernetes" / "overlays" / "prod")
    prod = replace(cluster, objects=[*objects, the(cluster.objects, "Secret")])
    prod.fresh_database()
    prod.migrate()
    with prod.pod() as pod:
        workers = int(pod.environment["WEB_CONCURRENCY"])
        assert workers > 1
        pod.wait_until_started()
        deadline = time.monotonic() + PATIENCE_SECONDS
        while pod.log.read_text().count("Application startup complete") < workers:
            assert time.monotonic() < deadline, pod.log.read_text()
            time.sleep(0.05)
        for probe in PROBES:
            assert pod.probe(probe)[0] == 200, pod.log.read_text()
        # Served from every worker's file in the shared folder (PROMETHEUS_MULTIPROC_DIR).
        assert get(f"http://{SERVER_ADDRESS}:{pod.port}/metrics", PATIENCE_SECONDS)[0] == 200
        grace = pod_spec(the(objects, "Deployment"))["terminationGracePeriodSeconds"]
        assert pod.terminate(grace) == 0, pod.log.read_text()
