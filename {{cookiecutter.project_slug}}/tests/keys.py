"""Primary keys for tests, whatever the project's key type."""

{% if cookiecutter.id_type == "uuid" -%}
import uuid

from {{ cookiecutter.package_name }}.db.ids import uuid7

# A key no row has: the all-but-zero UUIDv7, from the start of 1970.
MISSING_KEY = uuid.UUID("00000000-0000-7000-8000-000000000001")
# How a key appears in JSON.
JsonKey = str


def new_key(index: int) -> uuid.UUID:
    """A key the database has not handed out, for rows inserted with their key."""
    return uuid7()


def as_json(key: uuid.UUID) -> JsonKey:
    return str(key)
{%- else -%}
# A key no row has: identity columns count up from 1.
MISSING_KEY = 999_999_999
# How a key appears in JSON.
JsonKey = int


def new_key(index: int) -> int:
    """A key the database has not handed out, for rows inserted with their key."""
    return 1_000_000_000 + index


def as_json(key: int) -> JsonKey:
    return key
{%- endif %}
