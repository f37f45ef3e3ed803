"""Run a unit of work again when PostgreSQL aborted it to resolve a conflict.

A serialization failure or a deadlock is not a bug: PostgreSQL cancelled one
transaction so the others could finish, and the same work run again from the
start normally succeeds. Only a whole transaction can be retried, so the work
is a function of the session rather than a block.
"""

import asyncio
import random
from collections.abc import Awaitable, Callable
{%- if cookiecutter.python_version == "3.11" %}
from typing import TypeVar
{%- endif %}

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.package_name }}.db.errors import (
    DEADLOCK_DETECTED,
    SERIALIZATION_FAILURE,
    sqlstate_and_constraint,
)
from {{ cookiecutter.package_name }}.db.session import AsyncSessionFactory, transaction
from {{ cookiecutter.package_name }}.observability import metrics
from {{ cookiecutter.package_name }}.observability.tracing import span

{% if cookiecutter.python_version == "3.11" -%}
T = TypeVar("T")
{% endif -%}
RETRYABLE_SQLSTATES = frozenset({SERIALIZATION_FAILURE, DEADLOCK_DETECTED})
DEFAULT_ATTEMPTS = 5
FIRST_BACKOFF_SECONDS = 0.005


def is_retryable(error: BaseException) -> bool:
    return (
        isinstance(error, DBAPIError) and sqlstate_and_constraint(error)[0] in RETRYABLE_SQLSTATES
    )


async def run_in_transaction{% if cookiecutter.python_version != "3.11" %}[T]{% endif %}(
    work: Callable[[AsyncSession], Awaitable[T]],
    sessions: AsyncSessionFactory,
    *,
    attempts: int = DEFAULT_ATTEMPTS,
) -> T:
    """`await work(session)` in a unit of work, retried from the start on 40001 and 40P01."""
    with span("run_in_transaction") as current:
        for attempt in range(1, attempts + 1):
            try:
                async with transaction(sessions) as session:
                    return await work(session)
            except DBAPIError as error:
                if attempt == attempts or not is_retryable(error):
                    raise
                sqlstate = sqlstate_and_constraint(error)[0] or ""
            metrics.transaction_retries.labels(sqlstate).inc()
            if current is not None:
                current.add_event(
                    "retry", {"attempt": attempt + 1, "db.response.status_code": sqlstate}
                )
            # Exponential backoff with jitter, so the transactions that collided drift apart.
            await asyncio.sleep(
                FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
            )
    raise AssertionError("attempts must be at least 1")
