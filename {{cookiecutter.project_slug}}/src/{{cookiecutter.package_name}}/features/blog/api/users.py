from fastapi import APIRouter, status

from {{ cookiecutter.package_name }}.api.dependencies import ReadSessionDep, SessionDep
from {{ cookiecutter.package_name }}.api.fields import ApiKey
from {{ cookiecutter.package_name }}.api.pages import Page, PageParamsDep, page_of
from {{ cookiecutter.package_name }}.api.responses import (
    BY_KEY,
    CONFLICTING_WRITE,
    QUERIES,
    WITH_BODY,
    answer_headers,
)
from {{ cookiecutter.package_name }}.features.blog.api.schemas import UserCreate, UserRead, UserUpdate
from {{ cookiecutter.package_name }}.features.blog.models import User
from {{ cookiecutter.package_name }}.features.blog.repositories import UserRepository
from {{ cookiecutter.package_name }}.features.idempotency.api.dependencies import REPLAYED, IdempotencyDep

router = APIRouter(prefix="/users", tags=["users"], responses=QUERIES)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={**WITH_BODY, **CONFLICTING_WRITE, **answer_headers(201, REPLAYED)},
)
async def create_user(
    body: UserCreate, session: SessionDep, idempotency: IdempotencyDep
) -> UserRead:
    await idempotency.claim(session, body)
    user = UserRead.model_validate(await UserRepository(session).create(**body.model_dump()))
    await idempotency.record(session, user, status.HTTP_201_CREATED)
    return user


@router.get("")
async def list_users(session: ReadSessionDep, page: PageParamsDep) -> Page[UserRead]:
    users = await UserRepository(session).list_page(limit=page.limit, after=page.after)
    return page_of(users, page.limit, UserRead)


@router.get("/{user_id}", responses=BY_KEY)
async def get_user(user_id: ApiKey, session: ReadSessionDep) -> UserRead:
    return UserRead.model_validate(await UserRepository(session).get_or_raise(user_id))


@router.patch("/{user_id}", responses={**BY_KEY, **WITH_BODY})
async def update_user(user_id: ApiKey, body: UserUpdate, session: SessionDep) -> UserRead:
    repository = UserRepository(session)
    user: User = await repository.get_or_raise(user_id)
    await repository.update(user, **body.model_dump(exclude_unset=True, exclude_none=True))
    return UserRead.model_validate(user)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=BY_KEY)
async def delete_user(user_id: ApiKey, session: SessionDep) -> None:
    repository = UserRepository(session)
    await repository.delete(await repository.get_or_raise(user_id))
