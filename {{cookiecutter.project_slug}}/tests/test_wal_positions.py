"""WAL positions: their spelling, what a replica can reach, and lag in time."""

import pytest

from {{ cookiecutter.package_name }}.db.replicas.checks import PrimaryProgress
from {{ cookiecutter.package_name }}.db.replicas.wal import format_position, parse_position, replayable

PAGE = 8192


@pytest.mark.parametrize("spelled", ["0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF"])
def test_positions_keep_postgresql_spelling(spelled: str) -> None:
    position = parse_position(spelled)
    assert position is not None
    assert format_position(position) == spelled


def test_the_spelling_counts_bytes() -> None:
    assert parse_position("1/10") == 2**32 + 16


@pytest.mark.parametrize("junk", ["", "16", "16/", "G/1", "1/2/3", "123456789/0", "1/ 2"])
def test_anything_else_is_not_a_position(junk: str) -> None:
    assert parse_position(junk) is None


@pytest.mark.parametrize(
    ("insert_position", "reachable"),
    [
        (5 * PAGE + 24, 5 * PAGE),  # just past a short page header
        (5 * PAGE + 40, 5 * PAGE),  # just past a segment's long page header
        (5 * PAGE + 100, 5 * PAGE + 100),
        (5 * PAGE, 5 * PAGE),
    ],
)
def test_a_page_header_alone_is_not_waited_for(insert_position: int, reachable: int) -> None:
    assert replayable(insert_position, PAGE) == reachable


def test_lag_is_the_age_of_the_oldest_position_not_replayed() -> None:
    progress = PrimaryProgress(max_samples=10)
    progress.record(10.0, 100)
    progress.record(10.5, 100)  # the same position: still first seen at 10.0
    progress.record(11.0, 200)
    assert progress.lag_ms(12.0, replayed=50) == 2000
    assert progress.lag_ms(12.0, replayed=100) == 1000
    assert progress.lag_ms(12.0, replayed=200) == 0
