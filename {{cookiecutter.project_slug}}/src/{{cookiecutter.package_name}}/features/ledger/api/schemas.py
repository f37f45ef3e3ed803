"""Request and response bodies of the accounts and transfers endpoints."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from {{ cookiecutter.package_name }}.api.bodies import Keyed
from {{ cookiecutter.package_name }}.api.fields import BIGINT_MAX, ApiKey, DatabaseText

# Whole minor units (cents) in a bigint column. Strict: true, "12" or 12.0 are refused
# rather than read as 1 or 12, since a misread amount of money is worse than a 422.
Money = Annotated[int, Field(strict=True, ge=0, le=BIGINT_MAX)]


class AccountCreate(BaseModel):
    name: DatabaseText = Field(min_length=1, max_length=100)
    balance: Money = 0


class AccountRead(Keyed):
    name: str
    balance: int


class TransferCreate(BaseModel):
    source_id: ApiKey
    target_id: ApiKey
    amount: Annotated[Money, Field(gt=0)]

    @model_validator(mode="after")
    def _distinct_accounts(self) -> "TransferCreate":
        if self.source_id == self.target_id:
            raise ValueError("source_id and target_id must be different accounts")
        return self


class TransferRead(Keyed):
    source_id: ApiKey
    target_id: ApiKey
    amount: int
    created_at: datetime
