"""The code's layers import one way, so the tree shows the architecture.

The local PostgreSQL machinery (`localpg`) stands alone; the service's layers
build on `db`; the command line sits on top. The service never imports the tests
or the benchmarks, and the benchmarks never import the tests.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = "{{ cookiecutter.package_name }}"
ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / PACKAGE
# What each part of the package may import of the package, besides itself.
MAY_IMPORT = {
    "localpg": set(),
    "logs": set(),
    "observability": set(),
    "settings": {"logs"},
    "db": {"settings", "logs", "observability"},
    "repositories": {"db"},
    "features": {"api", "db", "repositories"},
    "api": {"db", "features", "logs", "observability", "repositories", "settings"},
}


def layer(module: str) -> str | None:
    """The part of the project `module` belongs to: a part of the package, `tests` or
    `benchmarks`; None for anything else."""
    top, _, rest = module.partition(".")
    if top == PACKAGE:
        return rest.split(".")[0] or PACKAGE
    return top if top in {"tests", "benchmarks"} else None


def imported_layers(files: list[Path]) -> set[tuple[str, str]]:
    """(file, imported module) for each import of the project's own code in `files`."""
    found = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
            else:
                continue
            found |= {(str(path.relative_to(ROOT)), m) for m in modules if layer(m) is not None}
    return found


def part_of(path: Path) -> str:
    relative = path.relative_to(SOURCE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


@pytest.mark.parametrize(
    "part", sorted(part for part in MAY_IMPORT if any(SOURCE.glob(f"{part}*")))
)
def test_each_part_of_the_service_imports_only_the_parts_below_it(part: str) -> None:
    files = [path for path in SOURCE.rglob("*.py") if part_of(path) == part]
    allowed = MAY_IMPORT[part] | {part}
    assert files
    assert (
        sorted(
            f"{path}: {module}"
            for path, module in imported_layers(files)
            if layer(module) not in allowed
        )
        == []
    )


def test_the_service_never_imports_the_tests_or_the_benchmarks() -> None:
    imports = imported_layers(sorted(SOURCE.rglob("*.py")))
    assert [
        f"{path}: {module}"
        for path, module in sorted(imports)
        if layer(module) in {"tests", "benchmarks"}
    ] == []


def test_the_benchmarks_never_import_the_tests() -> None:
    imports = imported_layers(sorted((ROOT / "benchmarks").rglob("*.py")))
    assert "benchmarks" in {layer(module) for _, module in imports}
    assert [
        f"{path}: {module}" for path, module in sorted(imports) if layer(module) == "tests"
    ] == []
