"""Value types for paths, queries and bodies, bounded like the columns they end up in.

A value the column cannot hold is refused as invalid input (422) before any query,
and the OpenAPI document shows the bounds.
"""

from typing import Annotated

from pydantic import AfterValidator{% if cookiecutter.id_type == "bigint" %}, Field{% endif %}

from {{ cookiecutter.package_name }}.db.base import Key

# The range of a PostgreSQL bigint (signed 64 bits).
BIGINT_MIN = -(2**63)
BIGINT_MAX = 2**63 - 1

{% if cookiecutter.id_type == "uuid" -%}
# Any well-formed UUID; OpenAPI shows it as a string of format uuid.
ApiKey = Key
{%- else -%}
# A primary key, as a path or query parameter or in a body.
ApiKey = Annotated[Key, Field(ge=BIGINT_MIN, le=BIGINT_MAX)]
{%- endif %}


def _without_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\x00) characters")
    return value


# PostgreSQL text cannot store NUL: reject it as invalid input, not as a database error.
DatabaseText = Annotated[str, AfterValidator(_without_nul)]
