"""The rendered Kubernetes manifests as kubectl builds them, and the numbers read from them."""

import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# The Kubernetes release the manifests are validated against (kubernetes-validate's schemas).
KUBERNETES_VERSION = "1.37.0"
OVERLAYS = ("dev", "prod")
# Connections a budget leaves to the server: superuser_reserved_connections (3), an
# operator's psql, monitoring.
RESERVED_CONNECTIONS = 10
# The annotation on the Deployment that names its server's max_connections.
MAX_CONNECTIONS = ".database/max-connections"

Manifest = dict[str, Any]


def kustomize(folder: Path) -> list[Manifest]:
    """The objects `kubectl kustomize folder` prints (the kubectl of the tests' environment)."""
    kubectl = Path(sys.executable).with_name("kubectl")
    built = subprocess.run(
        [str(kubectl), "kustomize", str(folder)], capture_output=True, text=True, check=True
    )
    return [document for document in yaml.safe_load_all(built.stdout) if document]


def the(objects: list[Manifest], kind: str) -> Manifest:
    """The one object of `kind`."""
    found = [item for item in objects if item["kind"] == kind]
    assert len(found) == 1, f"{len(found)} objects of kind {kind}"
    return found[0]


def container(workload: Manifest) -> Manifest:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return dict(only)


def settings_of(objects: list[Manifest]) -> Mapping[str, str]:
    return dict(the(objects, "ConfigMap")["data"])


@dataclass(frozen=True)
class ConnectionBudget:
    """What the service may open on the primary at most, against what the server allows."""

    pods: int
    autoscaler_max: int
    workers: int
    per_process: int
    migrate: int
    max_connections: int

    @property
    def needed(self) -> int:
        return self.pods * self.workers * self.per_process + self.migrate

    @property
    def available(self) -> int:
        return self.max_connections - RESERVED_CONNECTIONS

    def __str__(self) -> str:
        return (
            f"{self.pods} pods x {self.workers} workers x {self.per_process} connections "
            f"+ {self.migrate} for migrate = {self.needed} of {self.available} "
            f"(max_connections {self.max_connections} - {RESERVED_CONNECTIONS} reserved)"
        )


def connection_budget(objects: list[Manifest]) -> ConnectionBudget:
    """The most pods the autoscaler and a rollout's surge allow, each worker of each with
    its primary and read pools (settings.py), and the migrate Job's one connection."""
    deployment = the(objects, "Deployment")
    settings = settings_of(objects)
    pool = int(settings.get("DB_POOL_SIZE", "10")) + int(settings.get("DB_MAX_OVERFLOW", "0"))
    (annotation,) = (
        value
        for key, value in deployment["metadata"]["annotations"].items()
        if key.endswith(MAX_CONNECTIONS)
    )
    autoscaler_max = int(the(objects, "HorizontalPodAutoscaler")["spec"]["maxReplicas"])
    return ConnectionBudget(
        pods=autoscaler_max + int(deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]),
        autoscaler_max=autoscaler_max,
        workers=int(settings.get("WEB_CONCURRENCY", "1")),
        per_process=2 * pool,
        migrate=1,
        max_connections=int(annotation),
    )
