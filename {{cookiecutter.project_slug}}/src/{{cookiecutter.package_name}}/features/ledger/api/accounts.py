"""Accounts and transfers: the transfer retries itself when PostgreSQL breaks a conflict."""

from fastapi import APIRouter, status
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.package_name }}.api.dependencies import (
    ReadSessionDep,
    SessionDep,
    SessionFactoryDep,
)
from {{ cookiecutter.package_name }}.api.fields import ApiKey
from {{ cookiecutter.package_name }}.api.responses import (
    BY_KEY,
    QUERIES,
    WITH_BODY,
    ErrorResponse,
    Responses,
    answer_headers,
)
from {{ cookiecutter.package_name }}.db.retry import run_in_transaction
from {{ cookiecutter.package_name }}.features.idempotency.api.dependencies import REPLAYED, IdempotencyDep
from {{ cookiecutter.package_name }}.features.ledger.api.schemas import (
    AccountCreate,
    AccountRead,
    TransferCreate,
    TransferRead,
)
from {{ cookiecutter.package_name }}.features.ledger.repositories import AccountRepository
from {{ cookiecutter.package_name }}.features.ledger.transfers import transfer

router = APIRouter(tags=["accounts"], responses=QUERIES)
REFUSED_TRANSFER: Responses = {
    409: {
        "model": ErrorResponse,
        "description": "insufficient_funds: the source account cannot cover the amount; "
        "nothing was changed.",
    }
}


@router.post("/accounts", status_code=status.HTTP_201_CREATED, responses=WITH_BODY)
async def create_account(body: AccountCreate, session: SessionDep) -> AccountRead:
    return AccountRead.model_validate(await AccountRepository(session).create(**body.model_dump()))


@router.get("/accounts/{account_id}", responses=BY_KEY)
async def get_account(account_id: ApiKey, session: ReadSessionDep) -> AccountRead:
    return AccountRead.model_validate(await AccountRepository(session).get_or_raise(account_id))


# 404: an account named in the body does not exist.
@router.post(
    "/transfers",
    status_code=status.HTTP_201_CREATED,
    responses={**WITH_BODY, **BY_KEY, **REFUSED_TRANSFER, **answer_headers(201, REPLAYED)},
)
async def create_transfer(
    body: TransferCreate, sessions: SessionFactoryDep, idempotency: IdempotencyDep
) -> TransferRead:
    # Not SessionDep: a retry must start a new transaction, so this route owns its own.
    async def work(session: AsyncSession) -> TransferRead:
        # A client's retry with the same Idempotency-Key gets this answer, moving no money.
        await idempotency.claim(session, body)
        made = await transfer(session, body.source_id, body.target_id, body.amount)
        answer = TransferRead.model_validate(made)
        await idempotency.record(session, answer, status.HTTP_201_CREATED)
        return answer

    return await run_in_transaction(work, sessions)
