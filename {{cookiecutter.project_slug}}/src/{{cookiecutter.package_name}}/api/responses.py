"""The error body's schema, and the error answers each kind of route documents.

Routes declare what they can answer with the shared sets below rather than one by
one, so that every status means the same thing, with the same schema, on every
route of the OpenAPI document. The API tests check each answer they get against it.
"""

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="What went wrong, for programs: see each status for its codes.")
    message: str = Field(description="What went wrong, for people.")
    # SkipJsonSchema: absent when not relevant, never null.
    fields: list[str] | SkipJsonSchema[None] = Field(
        default=None, description="The fields involved (already_exists, missing_reference)."
    )
    details: list[dict[str, Any]] | SkipJsonSchema[None] = Field(
        default=None, description="One entry per refused value (invalid_input)."
    )
    request_id: str | SkipJsonSchema[None] = Field(
        default=None,
        description="The id of the request in the service's logs (internal_error); "
        "every answer also carries it in its X-Request-ID header.",
    )


class ErrorResponse(BaseModel):
    """The body of every 4xx and 5xx answer."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


# What each status means on this service, with the codes it comes with.
ERROR_DESCRIPTIONS = {
    400: "malformed_request: the body could not be read as text (not UTF-8).",
    404: "not_found: no row has the key given.",
    409: "already_exists (`fields` names the unique fields), conflict (the change conflicts "
    "with the data as it is), idempotency_key_unfinished, or a code of the operation's own "
    "business rule.",
    412: "precondition_failed: If-Match names a version the row no longer has, or another "
    "request changed it meanwhile; nothing was changed. Read it again for its ETag.",
    422: "invalid_input: a value was refused (`details` has one entry per value; "
    "`json_invalid` for a body that is not JSON, `extra_forbidden` for a field not taken), "
    "missing_reference: a key names no row (`fields` names it), or idempotency_key_reused: "
    "the Idempotency-Key came with another body.",
    428: "precondition_required: the operation needs If-Match with the row's ETag.",
    500: "internal_error: a bug. Quote `request_id` when reporting it.",
    503: "database_unavailable, service_busy (no free database connection in time), "
    "schema_out_of_date (the database is behind the code, or misses a table) or "
    "conflict_retry: retry after `Retry-After` seconds.",
    504: "query_timeout: a statement ran longer than DB_STATEMENT_TIMEOUT_MS.",
}

Responses = dict[int | str, dict[str, Any]]


def error_responses(*statuses: int) -> Responses:
    return {
        status: {"model": ErrorResponse, "description": ERROR_DESCRIPTIONS[status]}
        for status in statuses
    }


# Every operation: a bug is a 500.
ANY_OPERATION = error_responses(500)
# Operations that run queries: a value the database refuses, its state, a statement timeout.
QUERIES = error_responses(422, 500, 503, 504)
# Operations that read a JSON body.
WITH_BODY = error_responses(400, 422)
# Operations on one row, named by its key.
BY_KEY = error_responses(404)
# Writes a unique constraint or a business rule can refuse.
CONFLICTING_WRITE = error_responses(409)


def answer_headers(status: int, headers: Mapping[str, str]) -> Responses:
    """The headers an operation's `status` answer may carry, each with what it says."""
    return {
        status: {
            "headers": {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in headers.items()
            }
        }
    }


ETAG = {"ETag": "The row's version, quoted: send it back in If-Match to change the row."}
# Changes of a versioned row that honour If-Match (api/preconditions.py); 428 where required.
# A 412 names the row's current ETag.
CONDITIONAL_WRITE: Responses = {
    412: {**error_responses(412)[412], **answer_headers(412, ETAG)[412]}
}
REQUIRED_CONDITION: Responses = {**CONDITIONAL_WRITE, **error_responses(428)}
