{%- if cookiecutter.python_version in ["3.11", "3.12", "3.13"] -%}
"""Time-ordered UUIDs (version 7, RFC 9562), generated in Python.

Keys that grow with time keep B-tree inserts at the right edge of the index,
as a sequence does, and keyset pagination returns rows in creation order. A
counter in the random bits keeps the keys of one process strictly increasing
even within the same millisecond.
"""

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_millisecond = 0
_counter = 0
# 12 bits of counter, seeded at random below half its range to leave room.
_COUNTER_BITS = 12


def uuid7() -> uuid.UUID:
    global _last_millisecond, _counter
    with _lock:
        millisecond = time.time_ns() // 1_000_000
        if millisecond <= _last_millisecond:
            millisecond = _last_millisecond
            _counter += 1
            if _counter >> _COUNTER_BITS:
                # Counter exhausted: borrow the next millisecond.
                millisecond += 1
                _counter = int.from_bytes(os.urandom(2)) >> 5
        else:
            _counter = int.from_bytes(os.urandom(2)) >> 5
        _last_millisecond = millisecond
        counter = _counter
    random_bits = int.from_bytes(os.urandom(8)) & ((1 << 62) - 1)
    # 48 bits of milliseconds, version 7, 12 bits of counter, variant 0b10, 62 random bits.
    timestamp = millisecond & ((1 << 48) - 1)
    return uuid.UUID(int=timestamp << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | random_bits)
{% else -%}
"""Time-ordered UUIDs (version 7, RFC 9562), from the standard library.

Keys that grow with time keep B-tree inserts at the right edge of the index,
as a sequence does, and keyset pagination returns rows in creation order.
uuid.uuid7() keeps the keys of one process strictly increasing, even within
the same millisecond.
"""

from uuid import uuid7

__all__ = ["uuid7"]
{% endif %}