"""The option matrix, as data: every choice in cookiecutter.json, combined.

The fast tier renders every combination of the options that change Python code,
each crossed with the data-only options (CI files, containers, license, the
PostgreSQL major) so that every pair of values meets in some render. The slow
tier installs and runs a pairwise-covering set of the options its suite can tell
apart, and installs every value of the others at least once.
"""

import itertools
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from tests.rendering import TEMPLATE

CONTEXT: dict[str, Any] = json.loads((TEMPLATE / "cookiecutter.json").read_text())
# A list is a choice, a boolean a yes/no question; strings are free answers.
OPTIONS: dict[str, list[Any]] = {
    name: value if isinstance(value, list) else [True, False]
    for name, value in CONTEXT.items()
    # Names starting with "_" are cookiecutter's settings, such as _extensions.
    if isinstance(value, list | bool) and not name.startswith("_")
}
SHORT_NAMES = {
    "python_version": "py",
    "postgres_version": "pg",
    "use_fastapi": "fastapi",
    "include_example_models": "examples",
    "use_docker": "docker",
    "kubernetes": "k8s",
    "id_type": "id",
}
# Only this Python exists on the CI machine, so the slow tier installs with it.
RUNNABLE_PYTHON = "3.11"


def combination_id(answers: Mapping[str, Any]) -> str:
    parts = []
    for name, value in answers.items():
        short = SHORT_NAMES.get(name, name)
        if isinstance(value, bool):
            parts.append(short if value else f"no-{short}")
        elif name.endswith("_version"):
            parts.append(f"{short}{value}")
        else:
            parts.append(f"{short}-{value}")
    return "_".join(parts) or "default"


# Options that change only data files (YAML, TOML, Dockerfile, LICENSE), never Python
# code: a fast test checks it. The fast tier crosses them pairwise, not fully.
DATA_OPTIONS = ("postgres_version", "ci", "use_docker", "kubernetes", "license")
# Answers that cannot go together (answer_checks.py refuses them): the manifests run `serve`.
REFUSED = frozenset({("use_fastapi", False, "kubernetes", True)})


def allowed(row: Mapping[str, Any]) -> bool:
    return not any(
        row.get(a, not value_a) == value_a and row.get(b, not value_b) == value_b
        for a, value_a, b, value_b in REFUSED
    )


def every_combination(options: Mapping[str, list[Any]]) -> Iterator[dict[str, Any]]:
    for values in itertools.product(*options.values()):
        yield dict(zip(options, values, strict=True))


Pair = tuple[str, Any, str, Any]


def pairs_of(row: Mapping[str, Any]) -> set[Pair]:
    return {(a, row[a], b, row[b]) for a, b in itertools.combinations(row, 2)}


def all_pairs(options: Mapping[str, list[Any]]) -> list[Pair]:
    return [
        (a, value_a, b, value_b)
        for a, b in itertools.combinations(options, 2)
        for value_a in options[a]
        for value_b in options[b]
        if allowed({a: value_a, b: value_b})
    ]


def greedy_row(
    options: Mapping[str, list[Any]], seed: Pair, uncovered: set[Pair]
) -> dict[str, Any]:
    """Complete the row holding `seed`, each option taking the value that covers most."""
    a, value_a, b, value_b = seed
    row = {a: value_a, b: value_b}
    for name in sorted(options, key=lambda name: -len(options[name])):
        if name not in row:
            row[name] = max(
                (value for value in options[name] if allowed({**row, name: value})),
                key=lambda value, name=name: len(pairs_of({**row, name: value}) & uncovered),
            )
    return {name: row[name] for name in options}


def pairwise(options: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """A small set of rows covering every pair of values, built greedily and deterministically."""
    uncovered = set(all_pairs(options))
    rows: list[dict[str, Any]] = []
    while uncovered:
        candidates = [greedy_row(options, seed, uncovered) for seed in all_pairs(options)]
        best = max(candidates, key=lambda row: len(pairs_of(row) & uncovered))
        rows.append(best)
        uncovered -= pairs_of(best)
    return rows


def cycles(values: list[Any], length: int) -> list[tuple[Any, ...]]:
    """Sequences of `length` that hold every value: each rotation, repeated to fill."""
    return [
        tuple(values[(shift + step) % len(values)] for step in range(length))
        for shift in range(len(values))
    ]


def code_crossed_with_data(
    options: Mapping[str, list[Any]], data: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Every combination of the code options, each in as many rows as the largest data
    option has values, so that it meets every value of every data option. Which data
    values share a row is chosen greedily, so that the data options' pairs are covered too.
    """
    code = {name: values for name, values in options.items() if name not in data}
    length = max(len(options[name]) for name in data)
    uncovered = set(all_pairs({name: options[name] for name in data}))
    rows: list[dict[str, Any]] = []
    for answers in every_combination(code):
        best: list[dict[str, Any]] = []
        gain = -1
        values = {
            name: [value for value in options[name] if allowed({**answers, name: value})]
            for name in data
        }
        for choice in itertools.product(*(cycles(values[name], length) for name in data)):
            block = [dict(zip(data, values, strict=True)) for values in zip(*choice, strict=True)]
            covered = len(set().union(*(pairs_of(row) for row in block)) & uncovered)
            if covered > gain:
                best, gain = block, covered
        for row in best:
            uncovered -= pairs_of(row)
            rows.append({name: {**answers, **row}[name] for name in options})
    return rows


FAST_ROWS = code_crossed_with_data(OPTIONS, DATA_OPTIONS)
ALL_COMBINATIONS = [pytest.param(answers, id=combination_id(answers)) for answers in FAST_ROWS]
# Free-text answers that must survive rendering: names, quotes, backslashes.
NAME_CASES = [
    pytest.param({}, id="default"),
    pytest.param(
        {"project_name": "Billing API", "description": 'Bills "customers" & sends \\ invoices'},
        id="custom-name-and-quotes",
    ),
    # Imports sort the same whether the package's name comes before or after
    # the project's own benchmarks and tests packages.
    pytest.param({"project_name": "Able"}, id="package-before-benchmarks"),
    pytest.param({"project_name": "Zulu"}, id="package-after-tests"),
]
# Options the installed project's suite cannot tell apart (files it never reads, and
# packaging metadata): the slow tier installs each of their values once, not each pair.
UNSEEN_BY_THE_SUITE = ("ci", "use_docker", "kubernetes", "license")
SLOW_OPTIONS = {
    name: values
    for name, values in OPTIONS.items()
    if name != "python_version" and name not in UNSEEN_BY_THE_SUITE
}


def with_each_value_in_turn(
    rows: list[dict[str, Any]], names: tuple[str, ...]
) -> list[dict[str, Any]]:
    turned = []
    for index, row in enumerate(rows):
        row = dict(row)
        for name in names:
            turn = [value for value in OPTIONS[name] if allowed({**row, name: value})]
            row[name] = turn[index % len(turn)]
        turned.append(row)
    return turned


SLOW_ROWS = with_each_value_in_turn(pairwise(SLOW_OPTIONS), UNSEEN_BY_THE_SUITE)
# Every major runs the full example suite: the slow rows cover some majors, the
# default render with another major covers the rest.
MAJORS_WITHOUT_THE_EXAMPLES = [
    major
    for major in OPTIONS["postgres_version"]
    if not any(
        row["postgres_version"] == major and row["use_fastapi"] and row["include_example_models"]
        for row in SLOW_ROWS
    )
]
SLOW_COMBINATIONS = [
    pytest.param({**answers, "python_version": RUNNABLE_PYTHON}, "uv", id=combination_id(answers))
    for answers in SLOW_ROWS
] + [
    # The README promises that plain pip works too.
    pytest.param(
        {"use_fastapi": False, "include_example_models": False, "ci": "none", "license": "none"},
        "pip",
        id="minimal-pip",
    )
]
