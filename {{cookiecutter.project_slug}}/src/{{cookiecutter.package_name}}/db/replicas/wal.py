"""Positions in the primary's write-ahead log: how far a replica replayed, what reads must see.

A replica has a commit once it has replayed the WAL up to the commit's end.
Positions are kept as integers (bytes since the start of the log) and shown in
PostgreSQL's own spelling, `16/B374D848`.
"""

import re

from sqlalchemy import text

# Bytes of WAL since its start: pg_lsn minus '0/0' is a plain number.
CURRENT_POSITION = text(
    "SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn, current_setting('wal_block_size')::int"
)
REPLAY_STATE = text("SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() - '0/0'::pg_lsn")
# Page headers: MAXALIGN(sizeof) of the short one, and of the long one a segment starts with.
PAGE_HEADER_SIZES = frozenset({24, 40})
SPELLING = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")


def replayable(insert_position: int, block_size: int) -> int:
    """The position a replica reaches once it has replayed everything inserted so far.

    When the last record ended at a page boundary, the insert position already
    counts the next page's header, which no replica replays until more WAL comes:
    the boundary itself is then what it reaches. No record can end between the
    boundary and that header's end, so nothing is lost by waiting for less.
    """
    offset = insert_position % block_size
    return insert_position - offset if offset in PAGE_HEADER_SIZES else insert_position


def format_position(position: int) -> str:
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


def parse_position(spelled: str) -> int | None:
    """A position from its PostgreSQL spelling, None if it is not one."""
    match = SPELLING.fullmatch(spelled.strip())
    if match is None:
        return None
    return (int(match[1], 16) << 32) | int(match[2], 16)
