from typing import Annotated

from fastapi import APIRouter, Query, status

from {{ cookiecutter.package_name }}.api.dependencies import ReadSessionDep, SessionDep
from {{ cookiecutter.package_name }}.api.schemas import UserCreate, UserPage, UserRead, UserUpdate
from {{ cookiecutter.package_name }}.db.base import Key
from {{ cookiecutter.package_name }}.models import User
from {{ cookiecutter.package_name }}.repositories import UserRepository
from {{ cookiecutter.package_name }}.repositories.base import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

router = APIRouter(prefix="/users", tags=["users"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_user(body: UserCreate, session: SessionDep) -> UserRead:
    user = await UserRepository(session).create(**body.model_dump())
    return UserRead.model_validate(user)


@router.get("")
async def list_users(
    session: ReadSessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    after: Key | None = None,
) -> UserPage:
    users = await UserRepository(session).list_page(limit=limit, after=after)
    next_after = users[-1].id if len(users) == limit else None
    return UserPage(items=[UserRead.model_validate(user) for user in users], next_after=next_after)


@router.get("/{user_id}")
async def get_user(user_id: Key, session: ReadSessionDep) -> UserRead:
    return UserRead.model_validate(await UserRepository(session).get_or_raise(user_id))


@router.patch("/{user_id}")
async def update_user(user_id: Key, body: UserUpdate, session: SessionDep) -> UserRead:
    repository = UserRepository(session)
    user: User = await repository.get_or_raise(user_id)
    await repository.update(user, **body.model_dump(exclude_unset=True, exclude_none=True))
    return UserRead.model_validate(user)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(user_id: Key, session: SessionDep) -> None:
    repository = UserRepository(session)
    await repository.delete(await repository.get_or_raise(user_id))
