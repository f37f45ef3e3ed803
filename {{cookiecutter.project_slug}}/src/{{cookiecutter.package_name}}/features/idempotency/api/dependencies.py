"""`IdempotencyDep` for a route that creates something: claim before the work, record after."""

from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Header, Request

from {{ cookiecutter.package_name }}.api.dependencies import SettingsDep
from {{ cookiecutter.package_name }}.features.idempotency.keys import Idempotency

# What a create that takes an Idempotency-Key adds to its success answer's documentation.
REPLAYED = {
    "Idempotent-Replayed": "true: this is the stored answer to an earlier request with the "
    "same Idempotency-Key; nothing was done again."
}
# Printable ASCII without spaces, as the IETF draft's examples (UUIDs, random tokens).
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"


def get_idempotency(
    request: Request,
    settings: SettingsDep,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=KEY_PATTERN,
            description="A key of the client's own (a UUID) for this request: a retry "
            "with the same key and body gets the first answer, and the work is done once "
            "(answered with the header Idempotent-Replayed: true). The same key with "
            "another body gets 422 idempotency_key_reused.",
        ),
    ] = None,
) -> Idempotency:
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    return Idempotency(
        scope=f"{request.method} {path}",
        key=key,
        ttl=timedelta(seconds=settings.idempotency_ttl),
    )


IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
