"""Request and response bodies of the accounts and transfers endpoints."""

from datetime import datetime
from typing import Annotated

from pydantic import Field, model_validator

from {{ cookiecutter.package_name }}.api.bodies import Keyed, RequestBody
from {{ cookiecutter.package_name }}.api.fields import BIGINT_END, BodyKey, DatabaseText

# Whole minor units (cents) in a bigint column. Strict: true, "12" or 12.0 are refused
# rather than read as 1 or 12, since a misread amount of money is worse than a 422.
# (JSON Schema would count 12.0 as an integer; no generator sends it for one.)
Money = Annotated[int, Field(strict=True, ge=0, lt=BIGINT_END)]


class AccountCreate(RequestBody):
    name: DatabaseText = Field(min_length=1, max_length=100)
    balance: Money = 0


class AccountRead(Keyed):
    name: str
    balance: int


class TransferCreate(RequestBody):
    """source_id and target_id must be different accounts (422 otherwise)."""

    source_id: BodyKey
    target_id: BodyKey
    amount: Annotated[Money, Field(gt=0)]

    @model_validator(mode="after")
    def _distinct_accounts(self) -> "TransferCreate":
        if self.source_id == self.target_id:
            raise ValueError("source_id and target_id must be different accounts")
        return self


class TransferRead(Keyed):
    source_id: BodyKey
    target_id: BodyKey
    amount: int
    created_at: datetime
