"""Conditional writes (RFC 9110): answers carry the row's ETag, and a change sent with
If-Match is made only if the row is still what the client read, so that no client
overwrites a change it has not seen. The ETag is the row's version (db/base.py's
VersionedMixin), quoted: a strong validator.
"""

from typing import Annotated

from fastapi import Header, Response

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The ETag of the row as last read (from GET): the change is made only "
        "if no one changed the row since, 412 precondition_failed otherwise.",
    ),
]


class PreconditionFailed(Exception):
    """If-Match names a version the row no longer has."""

    def __init__(self, entity: str, current: str) -> None:
        super().__init__(
            f"If-Match does not match the {entity}'s current ETag {current}: "
            "read it again, then send the change with that ETag"
        )
        self.current = current


class PreconditionRequired(Exception):
    """A change that must say which version of the row it is based on did not."""

    def __init__(self, entity: str) -> None:
        super().__init__(
            f"this request changes the {entity}: send If-Match with the ETag it was read with"
        )


def etag(version: int) -> str:
    return f'"{version}"'


def with_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


def require_match(if_match: str | None, version: int, entity: str, *, required: bool) -> None:
    """Raise unless If-Match names the row's version (or `*`); without If-Match, raise
    only if `required`."""
    if if_match is None:
        if required:
            raise PreconditionRequired(entity)
        return
    tags = {tag.strip() for tag in if_match.split(",")}
    if "*" not in tags and etag(version) not in tags:
        raise PreconditionFailed(entity, etag(version))
