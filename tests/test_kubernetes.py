"""The Kubernetes option: each overlay built by kubectl, every object valid against the
Kubernetes API's schemas, the policies a platform team checks, and the connection budget.
"""

import shutil
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.kubernetes import (
    COMPONENT,
    KUBERNETES_VERSION,
    OVERLAYS,
    Manifest,
    connection_budgets,
    container,
    kustomize,
    settings_of,
    the,
)
from tests.rendering import render_into

KINDS = {
    "ConfigMap",
    "Deployment",
    "HorizontalPodAutoscaler",
    "Job",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "Service",
    "ServiceAccount",
}
PROBES = {
    "startupProbe": "/health/live",
    "readinessProbe": "/health/ready",
    "livenessProbe": "/health/live",
}
# How long /health/ready gives its query (api/health.py): the probe must wait longer.
READY_QUERY_SECONDS = 2


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_into(tmp_path_factory.mktemp("kubernetes"), kubernetes=True)


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest, project: Path) -> list[Manifest]:
    return kustomize(project / "deploy" / "kubernetes" / "overlays" / request.param)


def test_every_object_is_valid_for_kubernetes(overlay: list[Manifest]) -> None:
    # Only dev makes its Secret: production's comes from a secret store.
    assert {item["kind"] for item in overlay} - {"Secret"} == KINDS
    for item in overlay:
        try:
            kubernetes_validate.validate(item, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as invalid:
            pytest.fail(f"{item['kind']} {item['metadata']['name']}: {invalid.message}")


def test_a_misspelt_field_is_caught_by_the_validation(overlay: list[Manifest]) -> None:
    deployment = the(overlay, "Deployment")
    misspelt = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, KUBERNETES_VERSION, strict=True)


def test_workloads_run_a_pinned_image_unprivileged(overlay: list[Manifest]) -> None:
    workloads = [item for item in overlay if item["kind"] in {"Deployment", "Job"}]
    assert len(workloads) >= 2
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        main = container(workload)
        image, _, tag = main["image"].rpartition(":")
        assert image, main["image"]
        assert tag not in {"", "latest"}, main["image"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["enableServiceLinks"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert main["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        for kind in ("requests", "limits"):
            assert set(main["resources"][kind]) == {"cpu", "memory"}


def test_the_service_is_probed_drained_and_rolled_without_losing_capacity(
    overlay: list[Manifest],
) -> None:
    deployment = the(overlay, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    api = container(deployment)
    assert {name: api[name]["httpGet"]["path"] for name in PROBES} == PROBES
    assert api["readinessProbe"]["timeoutSeconds"] > READY_QUERY_SECONDS
    assert api["args"][0] == "serve"
    graceful = int(api["args"][api["args"].index("--graceful-timeout") + 1])
    pause = api["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > pause + graceful
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    # The autoscaler owns the count: an applied `replicas` would undo its work.
    assert "replicas" not in deployment["spec"]
    assert (
        the(overlay, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"]
        == (deployment["metadata"]["name"])
    )
    assert pod["topologySpreadConstraints"]


def test_only_the_migrate_job_can_read_the_owners_url(overlay: list[Manifest]) -> None:
    deployment, job = the(overlay, "Deployment"), the(overlay, "Job")
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    (service_secret,) = (volume for volume in volumes if "secret" in volume)
    assert [item["key"] for item in service_secret["secret"]["items"]] == ["database-url"]
    assert settings_of(overlay)["DATABASE_URL_FILE"].endswith("/database-url")
    migrate = container(job)
    assert migrate["command"][-1] == "migrate"
    (owner_url,) = (v for v in migrate["env"] if v["name"] == "DATABASE_MIGRATION_URL_FILE")
    assert owner_url["value"].endswith("/migration-url")
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert 0 < job["spec"]["backoffLimit"] <= 5
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    assert job["spec"]["activeDeadlineSeconds"] > 0


def test_the_network_policy_admits_the_port_and_lets_out_dns_and_the_database(
    overlay: list[Manifest],
) -> None:
    policy = the(overlay, "NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"]
    assert [port["port"] for rule in policy["ingress"] for port in rule["ports"]] == [8000]
    egress = {port["port"] for rule in policy["egress"] for port in rule["ports"]}
    assert {53, 5432} <= egress


def pods_of(objects: list[Manifest], kind: str, component: str) -> Manifest:
    """The labels of the pods a workload makes."""
    return dict(the(objects, kind, component)["spec"]["template"]["metadata"]["labels"])


def selects(selector: Manifest, labels: Manifest) -> bool:
    """Whether a Service's selector, or a label selector (matchLabels, matchExpressions with
    In), selects pods with `labels`."""
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        return selector.items() <= labels.items()
    expressions = selector.get("matchExpressions", [])
    assert {expression["operator"] for expression in expressions} <= {"In"}
    return selector.get("matchLabels", {}).items() <= labels.items() and all(
        labels.get(expression["key"]) in expression["values"] for expression in expressions
    )


def test_every_selector_selects_the_pods_it_is_for(overlay: list[Manifest]) -> None:
    migrate = pods_of(overlay, "Job", "api")
    deployments = [item for item in overlay if item["kind"] == "Deployment"]
    for deployment in deployments:
        component = deployment["metadata"]["labels"].get(COMPONENT, "api")
        pods = pods_of(overlay, "Deployment", component)
        assert selects(deployment["spec"]["selector"]["matchLabels"], pods)
        assert selects(the(overlay, "Service", component)["spec"]["selector"], pods)
        budget = the(overlay, "PodDisruptionBudget", component)
        assert selects(budget["spec"]["selector"]["matchLabels"], pods)
        assert not selects(the(overlay, "Service", component)["spec"]["selector"], migrate)
        # Each workload's pods fall under their own NetworkPolicy and no other's: policies
        # add up, and another's would let in or out what this one's keeps out.
        policies = [item for item in overlay if item["kind"] == "NetworkPolicy"]
        covering = [item for item in policies if selects(item["spec"]["podSelector"], pods)]
        assert covering == [the(overlay, "NetworkPolicy", component)]
    # The migrate Job needs DNS and the database as much as the service does.
    policy = the(overlay, "NetworkPolicy")["spec"]
    assert selects(policy["podSelector"], migrate)


def test_the_network_policies_let_out_dns_to_the_cluster_dns(overlay: list[Manifest]) -> None:
    policies = [item for item in overlay if item["kind"] == "NetworkPolicy"]
    for policy in policies:
        (dns,) = (
            rule for rule in policy["spec"]["egress"] if {53} == {p["port"] for p in rule["ports"]}
        )
        # Exactly the DNS pods' own label: a label added to this peer matches no DNS pod.
        assert dns["to"] == [
            {"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
        ]


def test_the_connection_budget_fits_the_server(overlay: list[Manifest]) -> None:
    for budget in connection_budgets(overlay):
        assert budget.needed <= budget.available, budget


def test_the_readme_states_each_overlays_budget(project: Path) -> None:
    readme = (project / "README.md").read_text().splitlines()
    for name in OVERLAYS:
        overlay = kustomize(project / "deploy" / "kubernetes" / "overlays" / name)
        for budget in connection_budgets(overlay):
            needed = f"{budget.counted} = {budget.needed}"
            row = f"| {name} | {needed} | {budget.limit} = {budget.available} |"
            assert row in readme, row


@pytest.mark.parametrize("overlay_name", ["prod", "prod-pgbouncer"])
def test_an_overlay_past_its_budget_is_caught(
    project: Path, tmp_path: Path, overlay_name: str
) -> None:
    folder = tmp_path / "kubernetes"
    shutil.copytree(project / "deploy" / "kubernetes", folder)
    sizes = folder / "overlays" / overlay_name / "sizes.yaml"
    patches = list(yaml.safe_load_all(sizes.read_text()))
    for patch in patches:
        if patch["kind"] == "HorizontalPodAutoscaler":
            patch["spec"]["maxReplicas"] *= 4
    sizes.write_text(yaml.safe_dump_all(patches))
    budgets = connection_budgets(kustomize(folder / "overlays" / overlay_name))
    assert any(budget.needed > budget.available for budget in budgets), budgets


def test_pgbouncer_serves_the_pods_and_the_job_goes_around_it(project: Path) -> None:
    overlay = kustomize(project / "deploy" / "kubernetes" / "overlays" / "prod-pgbouncer")
    assert settings_of(overlay)["DB_PGBOUNCER"] == "true"
    migrate_env = {item["name"]: item["value"] for item in container(the(overlay, "Job"))["env"]}
    assert migrate_env["DB_PGBOUNCER"] == "false"
    bouncer = container(the(overlay, "Deployment", "pgbouncer"))
    (port,) = bouncer["ports"]
    service = the(overlay, "Service", "pgbouncer")
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    policy = the(overlay, "NetworkPolicy", "pgbouncer")["spec"]
    (admitted,) = policy["ingress"]
    assert admitted["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api"
    assert [rule["port"] for rule in admitted["ports"]] == [port["containerPort"]]


def test_without_the_option_nothing_of_it_is_rendered(tmp_path: Path) -> None:
    project = render_into(tmp_path)
    assert not (project / "deploy").exists()
    assert not (project / "Dockerfile").exists()


def test_the_image_runs_as_the_user_the_pods_name(project: Path, overlay: list[Manifest]) -> None:
    (user,) = (
        line.split()[1]
        for line in (project / "Dockerfile").read_text().splitlines()
        if line.startswith("USER ")
    )
    for kind in ("Deployment", "Job"):
        context = the(overlay, kind)["spec"]["template"]["spec"]["securityContext"]
        assert user == f"{context['runAsUser']}:{context['runAsGroup']}"
