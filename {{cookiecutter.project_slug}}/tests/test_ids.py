"""Primary keys are UUIDv7: time-ordered, strictly increasing within a process, unique."""

import time
import uuid

from {{ cookiecutter.package_name }}.db.ids import uuid7


def test_keys_are_version_7_with_the_rfc_variant() -> None:
    key = uuid7()
    assert key.version == 7
    assert key.variant == uuid.RFC_4122


def test_keys_carry_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    key = uuid7()
    after = time.time_ns() // 1_000_000
    # Within one process a burst may borrow a millisecond or two from the future.
    assert before <= key.int >> 80 <= after + 2


def test_keys_increase_strictly_even_within_a_millisecond() -> None:
    keys = [uuid7() for _ in range(20_000)]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
