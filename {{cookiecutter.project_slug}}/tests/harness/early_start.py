"""The run's cluster, started while pytest imports the test files that need it.

A test file's imports (the service, SQLAlchemy) keep the processor busy for longer
than copying and starting the cached cluster takes, which mostly waits on the
server. So when collection reaches a file whose tests ask for a database fixture,
a thread joins the run's cluster, and the `database` fixture finds it up.

The thread imports nothing (two threads importing at once can deadlock on an import
cycle): it starts a server from a cache already built, or leaves the work to the
fixture. Nothing starts early for a run that selects tests after collection (-k, -m,
--deselect, --lf, --sw), that runs none (--collect-only, --fixtures, --setup-plan), or
that uses TEST_DATABASE_URL; only the tests a file's node ids name count.
"""

from __future__ import annotations

import ast
import os
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.harness.identity import RunIdentity

if TYPE_CHECKING:
    from {{ cookiecutter.package_name }}.localpg.cluster import Cluster

# The harness's fixtures that need the database, `database` itself and all that ask for
# it (tests/test_harness.py checks the list against tests/harness/fixtures.py).
DATABASE_FIXTURES = frozenset(
    {
{%- if cookiecutter.use_fastapi %}
        "api",
        "client",
        "own_api",
{%- endif %}
        "assert_max_queries",
        "bare_role",
        "database",
        "db_connection",
        "db_engine",
        "db_owner",
        "db_read_sessions",
        "db_scope",
        "db_session",
        "db_sessions",
        "isolated_engine_for_test",
        "make",
        "postgres_url",
        "replica",
        "replica_server",
        "replica_urls",
        "session_engine",
    }
)
# Calls that name fixtures in strings.
NAMING_CALLS = ("usefixtures", "getfixturevalue")
_EARLY = pytest.StashKey["EarlyCluster"]()
_IDENTITY = pytest.StashKey[RunIdentity]()


def run_identity(config: pytest.Config) -> RunIdentity:
    """This process's run, the same for the early start and the fixture."""
    if _IDENTITY not in config.stash:
        config.stash[_IDENTITY] = RunIdentity.of(config)
    return config.stash[_IDENTITY]


def is_fixture(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Decorated with pytest.fixture or pytest_asyncio.fixture, called or not (a test's
    mark.usefixtures is not)."""
    return any(
        ast.unparse(decorator.func if isinstance(decorator, ast.Call) else decorator).endswith(
            "fixture"
        )
        for decorator in function.decorator_list
    )


def asks_for_database(source: str | bytes, selected: set[str] | None = None) -> bool:
    """Whether the tests in `source` (those named in `selected`, or all) or its fixtures
    ask for a database fixture, by parameter or by name (usefixtures, getfixturevalue).

    A file Python cannot parse asks for nothing: pytest reports it when it imports it.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    except ValueError:
        # Null bytes, before Python 3.12.
        return False

    def asks(node: ast.AST, chosen: bool) -> bool:
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith(NAMING_CALLS):
            named = {argument.value for argument in node.args if isinstance(argument, ast.Constant)}
            if not named.isdisjoint(DATABASE_FIXTURES):
                return True
        if isinstance(node, ast.ClassDef):
            chosen = chosen or node.name in (selected or ())
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            named = {argument.arg for argument in arguments}
            counted = chosen or node.name in (selected or ()) or is_fixture(node)
            if counted and not named.isdisjoint(DATABASE_FIXTURES):
                return True
        return any(asks(child, chosen) for child in ast.iter_child_nodes(node))

    return asks(tree, selected is None)


def selected_names(config: pytest.Config, path: Path) -> set[str] | None:
    """The functions and classes that the command line's node ids name in `path`; None
    when an argument names the whole file (or a folder holding it)."""
    names: set[str] = set()
    for argument in config.args:
        file, _, rest = argument.partition("::")
        target = (config.invocation_params.dir / file).resolve()
        if target != path and target not in path.parents:
            continue
        if not rest:
            return None
        names.update(part.split("[")[0] for part in rest.split("::"))
    return names


class EarlyCluster:
    """The run's cluster, joined in a thread; the fixture takes it, or it is left at exit."""

    def __init__(self, identity: RunIdentity) -> None:
        self.identity = identity
        self._joining: Future[tuple[ExitStack, Cluster]] | None = None
        self._taken = False

    @property
    def started(self) -> bool:
        return self._joining is not None

    def start(self) -> None:
        # Imported here, in the main thread, so that the thread imports nothing.
        from {{ cookiecutter.package_name }}.localpg.binaries import find_bindir
        from {{ cookiecutter.package_name }}.localpg.runs import shared_cluster
        from tests.harness.databases import project_migrations

        migrations = project_migrations()

        def join() -> tuple[ExitStack, Cluster]:
            stack = ExitStack()
            bindir = find_bindir()
            cluster = stack.enter_context(
                shared_cluster(bindir, self.identity.run, migrations, build=False)
            )
            return stack, cluster

        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="early-cluster")
        self._joining = thread.submit(join)
        # Returns at once; the thread ends with the start.
        thread.shutdown(wait=False)

    def _claim(self) -> tuple[ExitStack, Cluster] | None:
        """The joined cluster, once: None if not started, already claimed, or it failed."""
        if self._joining is None or self._taken:
            return None
        self._taken = True
        try:
            return self._joining.result()
        except Exception:
            return None

    def take(self, stack: ExitStack) -> Cluster | None:
        """The running cluster, left by `stack`; None if it did not start (no cache, no
        server found): the fixture then does it all and reports what fails."""
        if (claimed := self._claim()) is None:
            return None
        joined, cluster = claimed
        stack.enter_context(joined)
        return cluster

    def leave(self) -> None:
        """At exit, for a run whose tests never took the cluster (deselected, skipped)."""
        if (claimed := self._claim()) is not None:
            claimed[0].close()


def early_cluster(config: pytest.Config) -> EarlyCluster | None:
    """This process's early start, whether it started or not; None where none may."""
    if _EARLY in config.stash:
        return config.stash[_EARLY]
    option = config.option
    # Runs that select or run tests after collection, or run none.
    selecting = ("keyword", "markexpr", "deselect", "lf", "stepwise")
    listing = ("collectonly", "showfixtures", "show_fixtures_per_test", "setupplan")
    if any(getattr(option, name, None) for name in (*selecting, *listing)) or os.environ.get(
        "TEST_DATABASE_URL"
    ):
        return None
    early = config.stash[_EARLY] = EarlyCluster(run_identity(config))
    config.add_cleanup(early.leave)
    return early


def start_if_asked(module: pytest.Module) -> None:
    """Start the run's cluster if the file being collected has tests that need it."""
    early = early_cluster(module.config)
    if early is None or early.started:
        return
    try:
        source = module.path.read_bytes()
    except OSError:
        return
    if asks_for_database(source, selected_names(module.config, module.path)):
        early.start()
