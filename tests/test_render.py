"""Fast tier: render every combination and inspect the result without installing it."""

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from hooks import post_gen_project
from tests.checkers import check_python, check_workflow, shared_environment
from tests.conftest import Render
from tests.options import (
    ALL_COMBINATIONS,
    DATA_OPTIONS,
    FAST_ROWS,
    NAME_CASES,
    OPTIONS,
    SLOW_COMBINATIONS,
    SLOW_OPTIONS,
    UNSEEN_BY_THE_SUITE,
    all_pairs,
    every_combination,
    pairs_of,
)
from tests.rendering import effective_answers, render_into

# The answers that leave out everything optional: the hook then lists all it can remove.
ALL_OFF = {
    "use_fastapi": False,
    "include_example_models": False,
    "id_type": "bigint",
    "ci": "none",
    "use_docker": False,
    "kubernetes": False,
    "license": "none",
}


def text_files(root: Path) -> list[Path]:
    files = []
    for path in root.rglob("*"):
        if path.is_file():
            try:
                path.read_text()
            except UnicodeDecodeError:
                continue
            files.append(path)
    return files


def assert_no_template_tags(project: Path) -> None:
    leftovers = [
        str(path.relative_to(project))
        for path in text_files(project)
        if "{{ cookiecutter." in path.read_text() or "{{cookiecutter." in path.read_text()
    ]
    assert leftovers == []
    assert not [path for path in project.rglob("*") if "cookiecutter" in path.name]


def assert_pyproject(project: Path, values: dict[str, Any]) -> None:
    assert project.name == values["project_slug"]
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())

    metadata = pyproject["project"]
    assert metadata["name"] == values["project_slug"]
    assert metadata["description"] == values["description"]
    assert metadata["requires-python"] == f">={values['python_version']}"
    assert metadata["scripts"] == {values["package_name"]: f"{values['package_name']}.cli:main"}
    if values["license"] == "none":
        assert "license" not in metadata
        assert metadata["classifiers"] == ["Private :: Do Not Upload"]
    else:
        assert metadata["license"] == values["license"]
        assert metadata["license-files"] == ["LICENSE"]
    dependencies = {
        requirement.split(">")[0].split("[")[0] for requirement in metadata["dependencies"]
    }
    runtime = {"sqlalchemy", "asyncpg", "psycopg", "alembic", "pydantic-settings"}
    runtime |= {"opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http", "prometheus-client"}
    web = {"fastapi", "uvicorn", "opentelemetry-instrumentation-fastapi"}
    assert dependencies == (runtime | web if values["use_fastapi"] else runtime)

    dev = {requirement.split(">")[0] for requirement in pyproject["dependency-groups"]["dev"]}
    assert {"pytest", "pytest-asyncio", "ruff", "mypy"} <= dev
    assert ("httpx" in dev) == values["use_fastapi"]

    assert pyproject["tool"]["localpg"]["postgres-major"] == int(values["postgres_version"])
    assert pyproject["tool"]["mypy"]["strict"] is True
    assert pyproject["tool"]["mypy"]["python_version"] == values["python_version"]
    target = "py" + values["python_version"].replace(".", "")
    assert pyproject["tool"]["ruff"]["target-version"] == target
    pytest_options = pyproject["tool"]["pytest"]["ini_options"]
    assert pytest_options["asyncio_default_test_loop_scope"] == "session"


def assert_files_follow_the_options(project: Path, values: dict[str, Any]) -> None:
    package = project / "src" / values["package_name"]
    always = [
        package / "settings.py",
        package / "db" / "base.py",
        package / "db" / "engine.py",
        package / "db" / "session.py",
        package / "localpg" / "cluster.py",
        package / "localpg" / "embedded.py",
        package / "db" / "retry.py",
        package / "repositories" / "base.py",
        project / "migrations" / "env.py",
        project / "migrations" / "versions" / "0001_initial.py",
        project / "tests" / "harness" / "databases.py",
        project / ".pre-commit-config.yaml",
        project / "uv.lock",
        project / ".env.example",
        project / "README.md",
    ]
    assert [path for path in always if not path.is_file()] == []
    # The hook says what each option's absence removes; everything else must be there.
    removed = post_gen_project.paths_to_remove(values)
    optional = post_gen_project.paths_to_remove(ALL_OFF | {"package_name": values["package_name"]})
    kept = [
        path
        for path in optional
        if not any(path == gone or path.startswith(f"{gone}/") for gone in removed)
    ]
    assert sorted(path for path in optional if (project / path).exists()) == sorted(kept)
    # The app finds each feature's endpoints, and nothing else names them.
    features = package / "features"
    examples = list(post_gen_project.EXAMPLE_FEATURES) if values["include_example_models"] else []
    with_endpoints = [*examples, "idempotency"] if values["use_fastapi"] else []
    assert sorted(path.parent.name for path in features.glob("*/api")) == sorted(with_endpoints)
    uuid_files = [package / "db" / "ids.py", project / "tests" / "test_ids.py"]
    assert [path.is_file() for path in uuid_files] == [values["id_type"] == "uuid"] * 2
    migration = (project / "migrations" / "versions" / "0001_initial.py").read_text()
    if values["include_example_models"]:
        assert ("sa.Uuid()" in migration) == (values["id_type"] == "uuid")
        assert ("sa.Identity(" in migration) == (values["id_type"] == "bigint")
    gitignore = (project / ".gitignore").read_text().splitlines()
    assert {".env", ".postgres/"} <= set(gitignore)


def assert_ci(project: Path, values: dict[str, Any]) -> None:
    github = project / ".github" / "workflows" / "ci.yml"
    gitlab = project / ".gitlab-ci.yml"
    assert (github.is_file(), gitlab.is_file()) == (
        values["ci"] == "github",
        values["ci"] == "gitlab",
    )
    assert not (project / ".github").exists() or values["ci"] == "github"
    if values["ci"] == "github":
        job = yaml.safe_load(github.read_text())["jobs"]["test"]
        service = job["services"]["postgres"]["image"]
        variables = job["env"]
        commands = [step.get("run") or "" for step in job["steps"]]
    elif values["ci"] == "gitlab":
        job = yaml.safe_load(gitlab.read_text())["test"]
        service = job["services"][0]["name"]
        variables = job["variables"]
        commands = [*job["before_script"], *job["script"]]
    else:
        return
    assert service == f"postgres:{values['postgres_version']}"
    assert variables["TEST_DATABASE_URL"].startswith("postgresql://")
    # The PgBouncer-mode tests must run there, not be skipped.
    assert variables["REQUIRE_PGBOUNCER"] == "1"
    assert any("install -y" in command and "pgbouncer" in command for command in commands)
    expected = {
        "uv run ruff check .",
        "uv run ruff format --check .",
        "uv run mypy",
        "uv run pytest tests/test_migrations.py",
        "uv run pytest --ignore=tests/test_migrations.py",
    }
    assert expected <= set(commands)


def assert_docker(project: Path, values: dict[str, Any]) -> None:
    image = values["use_docker"] or values["kubernetes"]
    files = [project / name for name in ("Dockerfile", ".dockerignore", "compose.yaml")]
    assert [path.is_file() for path in files] == [image, image, values["use_docker"]]
    assert (project / "deploy" / "kubernetes").is_dir() == values["kubernetes"]
    if not values["use_docker"]:
        return
    dockerfile = (project / "Dockerfile").read_text().splitlines()
    assert f"FROM python:{values['python_version']}-slim" in dockerfile
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    database = compose["services"]["db"]
    assert database["image"] == f"postgres:{values['postgres_version']}"
    # From 18 the image refuses a volume on .../data: it keeps a folder per major.
    major = int(values["postgres_version"])
    data = "/var/lib/postgresql" if major >= 18 else "/var/lib/postgresql/data"
    assert database["volumes"] == [f"db-data:{data}"]
    hba_file = compose["configs"]["pg_hba"]["content"].splitlines()
    assert "host replication all all scram-sha-256" in hba_file
    assert database["command"][-1] == f"hba_file={database['configs'][0]['target']}"
    replica = compose["services"]["db-replica"]
    assert replica["image"] == database["image"]
    assert replica["volumes"] == [f"db-replica-data:{data}"]
    # Compose would substitute a single $ itself: the script must see $PGDATA.
    script = replica["command"][-1]
    assert script.startswith("set -e\n")
    assert 'chmod 0700 "$$PGDATA"' in script
    assert replica["restart"] == "on-failure"
    # Healthy only once db listens on TCP, not while the image initialises on the socket.
    assert "pg_isready -h 127.0.0.1" in database["healthcheck"]["test"][-1]
    assert "pg_basebackup --host=db" in script
    assert '"$$PGDATA/PG_VERSION"' in script
    assert "--write-recovery-conf" in script
    # Two roles: the image's superuser owns the tables and migrates; its init script makes
    # the service's, which `migrate` grants what the service needs.
    database_path = f"5432/{values['package_name']}"
    owner_url = f"postgresql://owner:owner@db:{database_path}"
    app_url = f"postgresql://app:app@db:{database_path}"
    assert database["environment"]["POSTGRES_USER"] == "owner"
    init_script = {"source": "app_role", "target": "/docker-entrypoint-initdb.d/app-role.sql"}
    assert init_script in database["configs"]
    assert compose["configs"]["app_role"]["content"] == "CREATE ROLE app LOGIN PASSWORD 'app';\n"
    assert "--username=owner" in script
    migrate = compose["services"]["migrate"]
    assert migrate["build"] == "."
    assert migrate["command"] == [values["package_name"], "migrate"]
    assert migrate["environment"]["DATABASE_MIGRATION_URL"] == owner_url
    assert migrate["environment"]["DATABASE_URL"] == app_url
    assert migrate["environment"]["DB_APP_ROLE"] == "app"
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    # Nothing to serve without FastAPI: the migrations are the whole service.
    services = [migrate]
    assert ("app" in compose["services"]) == values["use_fastapi"]
    if values["use_fastapi"]:
        app = compose["services"]["app"]
        services.append(app)
        assert app["build"] == "."
        assert app["command"] == [values["package_name"], "serve", "--host", "0.0.0.0"]
        assert app["environment"]["DATABASE_URL"] == app_url
        assert "DATABASE_MIGRATION_URL" not in app["environment"]
        replicas = f"postgresql://app:app@db-replica:{database_path}"
        assert app["environment"]["DATABASE_REPLICA_URLS"] == replicas
        assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert app["ports"] == ["8000:8000"]
    # The service's traces go to the Jaeger beside it, over OTLP/HTTP, shown on 16686.
    jaeger = compose["services"]["jaeger"]
    receiver = "receivers.otlp.protocols.http.endpoint=0.0.0.0:4318"
    assert jaeger["command"] == ["--set", receiver]
    for service in services:
        assert service["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
        assert service["environment"]["OTEL_SERVICE_NAME"] == values["package_name"]
    assert jaeger["ports"] == ["16686:16686"]
    assert ".env" in (project / ".dockerignore").read_text().splitlines()


LICENSE_FIRST_LINES = {
    "MIT": "MIT License",
    "BSD-3-Clause": "BSD 3-Clause License",
    "Apache-2.0": "Apache License",
}


def assert_license(project: Path, values: dict[str, Any]) -> None:
    path = project / "LICENSE"
    assert path.is_file() == (values["license"] != "none")
    if values["license"] == "none":
        return
    text = path.read_text()
    assert text.strip().splitlines()[0].strip() == LICENSE_FIRST_LINES[values["license"]]
    if values["license"] != "Apache-2.0":
        assert values["author_name"] in text


@pytest.fixture(scope="session")
def check_environment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared environment for ruff and mypy, from a render with every option on."""
    full = render_into(tmp_path_factory.mktemp("full"), use_fastapi=True)
    return shared_environment(full)


@pytest.mark.parametrize("answers", ALL_COMBINATIONS)
def test_combination(tmp_path: Path, check_environment: Path, answers: dict[str, Any]) -> None:
    values = effective_answers(**answers)
    project = render_into(tmp_path, **answers)
    assert_no_template_tags(project)
    assert_pyproject(project, values)
    assert_files_follow_the_options(project, values)
    assert_ci(project, values)
    assert_docker(project, values)
    assert_license(project, values)
    ok, output = check_python(project, check_environment)
    assert ok, output
    if values["ci"] == "github":
        ok, output = check_workflow(project / ".github" / "workflows" / "ci.yml")
        assert ok, output


@pytest.mark.parametrize("answers", NAME_CASES)
def test_free_text_answers_survive_rendering(
    render: Render, check_environment: Path, answers: dict[str, Any]
) -> None:
    project = render(**answers)
    assert_no_template_tags(project)
    assert_pyproject(project, effective_answers(**answers))
    ok, output = check_python(project, check_environment)
    assert ok, output


def test_fast_tier_renders_every_code_combination_and_every_pair() -> None:
    code = {name: values for name, values in OPTIONS.items() if name not in DATA_OPTIONS}
    rendered = {tuple(row[name] for name in code) for row in FAST_ROWS}
    assert rendered == {tuple(answers.values()) for answers in every_combination(code)}
    covered = set().union(*(pairs_of(row) for row in FAST_ROWS))
    assert set(all_pairs(OPTIONS)) <= covered


def python_sources(project: Path) -> dict[str, str]:
    return {str(path.relative_to(project)): path.read_text() for path in project.rglob("*.py")}


def test_data_options_change_no_python_code(tmp_path: Path) -> None:
    # What lets the fast tier cross them pairwise: ruff and mypy judge no code they change.
    default = python_sources(render_into(tmp_path / "default"))
    for name in DATA_OPTIONS:
        for value in OPTIONS[name][1:]:
            project = render_into(tmp_path / f"{name}-{value}", **{name: value})
            assert python_sources(project) == default, f"{name}={value} changes Python code"


def test_slow_tier_covers_every_pair_the_suite_sees_and_every_value() -> None:
    rows = [combination.values[0] for combination in SLOW_COMBINATIONS]
    covered = set().union(*(pairs_of(row) for row in rows))
    assert set(all_pairs(SLOW_OPTIONS)) <= covered
    for name in UNSEEN_BY_THE_SUITE:
        assert {row[name] for row in rows if name in row} == set(OPTIONS[name]), name


def test_alembic_ini_has_no_url(render: Render) -> None:
    ini = (render() / "alembic.ini").read_text()
    assert "sqlalchemy.url" not in ini
    assert "ruff" in ini
