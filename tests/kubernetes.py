"""The rendered Kubernetes manifests as kubectl builds them, and the numbers read from them."""

import configparser
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# The Kubernetes release the manifests are validated against (kubernetes-validate's schemas).
KUBERNETES_VERSION = "1.37.0"
OVERLAYS = ("dev", "prod", "prod-pgbouncer")
# Connections a budget leaves to the server: superuser_reserved_connections (3), an
# operator's psql, monitoring.
RESERVED_CONNECTIONS = 10
# The annotation on the Deployment that names its server's max_connections.
MAX_CONNECTIONS = ".database/max-connections"
COMPONENT = "app.kubernetes.io/component"

Manifest = dict[str, Any]


def kustomize(folder: Path) -> list[Manifest]:
    """The objects `kubectl kustomize folder` prints (the kubectl of the tests' environment)."""
    kubectl = Path(sys.executable).with_name("kubectl")
    built = subprocess.run(
        [str(kubectl), "kustomize", str(folder)], capture_output=True, text=True, check=True
    )
    return [document for document in yaml.safe_load_all(built.stdout) if document]


def the(objects: list[Manifest], kind: str, component: str = "api") -> Manifest:
    """The one object of `kind` of the service's (unlabelled, or labelled `api`), or of
    another component such as PgBouncer."""
    found = [
        item
        for item in objects
        if item["kind"] == kind
        and item["metadata"].get("labels", {}).get(COMPONENT, "api") == component
    ]
    assert len(found) == 1, f"{len(found)} objects of kind {kind} for {component}"
    return found[0]


def container(workload: Manifest) -> Manifest:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return dict(only)


def settings_of(objects: list[Manifest]) -> Mapping[str, str]:
    (settings,) = (
        item["data"]
        for item in objects
        if item["kind"] == "ConfigMap" and "DATABASE_URL_FILE" in item["data"]
    )
    return dict(settings)


def pgbouncer_ini(objects: list[Manifest]) -> configparser.ConfigParser | None:
    """PgBouncer's configuration, when the manifests run one."""
    found = [item for item in objects if "pgbouncer.ini" in item.get("data", {})]
    if not found:
        return None
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",))
    parser.read_string(found[0]["data"]["pgbouncer.ini"])
    return parser


@dataclass(frozen=True)
class Budget:
    """Connections some clients may open at most, against what the other end allows."""

    counted: str
    needed: int
    limit: str
    available: int

    def __str__(self) -> str:
        return f"{self.counted} = {self.needed} of {self.limit} = {self.available}"


def most_pods(deployment: Manifest, objects: list[Manifest]) -> int:
    """The autoscaler's most, or the Deployment's count, plus a rollout's surge."""
    scalers = [
        item
        for item in objects
        if item["kind"] == "HorizontalPodAutoscaler"
        and item["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    ]
    steady = scalers[0]["spec"]["maxReplicas"] if scalers else deployment["spec"]["replicas"]
    return int(steady) + int(deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"])


def connection_budgets(objects: list[Manifest]) -> list[Budget]:
    """Each worker of each pod with its primary and read pools (settings.py), and the
    migrate Job's one connection, against the server's max_connections less what it
    keeps; with PgBouncer, the pods against its max_client_conn and its pools against
    the server."""
    deployment = the(objects, "Deployment")
    settings = settings_of(objects)
    pool = int(settings.get("DB_POOL_SIZE", "10")) + int(settings.get("DB_MAX_OVERFLOW", "0"))
    workers = int(settings.get("WEB_CONCURRENCY", "1"))
    pods = most_pods(deployment, objects)
    (max_connections,) = (
        int(value)
        for key, value in deployment["metadata"]["annotations"].items()
        if key.endswith(MAX_CONNECTIONS)
    )
    server = f"max_connections {max_connections} - {RESERVED_CONNECTIONS} reserved"
    clients = f"{pods} pods x {workers} workers x {2 * pool} connections"
    available = max_connections - RESERVED_CONNECTIONS
    pgbouncer = pgbouncer_ini(objects)
    if pgbouncer is None:
        return [Budget(f"{clients} + 1 migrate", pods * workers * 2 * pool + 1, server, available)]
    bouncers = most_pods(the(objects, "Deployment", "pgbouncer"), objects)
    per_bouncer = pgbouncer.getint("pgbouncer", "default_pool_size")
    return [
        Budget(
            clients,
            pods * workers * 2 * pool,
            "max_client_conn",
            pgbouncer.getint("pgbouncer", "max_client_conn"),
        ),
        Budget(
            f"{bouncers} PgBouncer pods x {per_bouncer} + 1 migrate",
            bouncers * per_bouncer + 1,
            server,
            available,
        ),
    ]
