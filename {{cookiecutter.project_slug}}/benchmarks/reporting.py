"""What every benchmark reports the same way: rows of figures, best-of timing, a table or JSON.

A benchmark runs for minutes, so it says on stderr when each scenario starts and
ends; stdout carries only the results: a table for people or, with --json, one
JSON document for scripts that compare runs.
"""

import argparse
import json
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

Figure = float | int | str | None


@dataclass
class Row:
    """One variant of a scenario: what it measured, and how it compares with others."""

    scenario: str
    variant: str
    figures: dict[str, Figure] = field(default_factory=dict)
    # Keyed by the variant compared with; what the ratio means is the benchmark's to say.
    ratios: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Column:
    """A table column: its title, the text it shows for a row, and its alignment."""

    title: str
    cell: Callable[[Row], str]
    align: str = ">"


def print_table(rows: Sequence[Row], columns: Sequence[Column]) -> None:
    cells = [[column.cell(row) for column in columns] for row in rows]
    widths = [
        max([len(column.title), *(len(line[index]) for line in cells)])
        for index, column in enumerate(columns)
    ]

    def line(texts: Sequence[str]) -> str:
        parts = zip(texts, columns, widths, strict=True)
        return "  ".join(f"{text:{column.align}{width}}" for text, column, width in parts)

    print(line([column.title for column in columns]).rstrip())
    for texts in cells:
        print(line(texts).rstrip())


def benchmark_parser(
    module: str, description: str | None, measured: str
) -> argparse.ArgumentParser:
    """The options every benchmark has: --repeat for each `measured` thing, and --json."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help=f"runs per {measured}; the best counts (default 3)"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the results as one JSON document instead of a table",
    )
    return parser


def print_json(
    benchmark: str,
    settings: Mapping[str, object],
    rows: Sequence[Row],
    summary: Mapping[str, Figure] | None = None,
) -> None:
    document = {
        "benchmark": benchmark,
        "settings": dict(settings),
        "rows": [asdict(row) for row in rows],
        "summary": dict(summary or {}),
    }
    json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
    print()


@contextmanager
def progress(scenario: str) -> Iterator[None]:
    """Say on stderr that `scenario` starts, then that it finished and how long it took."""
    print(f"start {scenario}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    yield
    elapsed = time.perf_counter() - started
    print(f"done  {scenario} in {elapsed:.1f} s", file=sys.stderr, flush=True)


def best_of(repeat: int, measure: Callable[[], Mapping[str, float]]) -> dict[str, float]:
    """Each figure's minimum over `repeat` measurements: noise on a shared machine only adds."""
    measured = [measure() for _ in range(repeat)]
    return {name: min(each[name] for each in measured) for name in measured[0]}


async def best_time(
    repeat: int,
    run: Callable[[], Awaitable[None]],
    reset: Callable[[], Awaitable[None]] | None = None,
) -> float:
    """Seconds of the fastest of `repeat` runs, each after an untimed `reset`."""
    timings = []
    for _ in range(repeat):
        if reset is not None:
            await reset()
        started = time.perf_counter()
        await run()
        timings.append(time.perf_counter() - started)
    return min(timings)


def format_seconds(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"
