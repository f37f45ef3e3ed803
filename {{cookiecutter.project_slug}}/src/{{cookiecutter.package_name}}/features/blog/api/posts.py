from fastapi import APIRouter, Response, status

from {{ cookiecutter.package_name }}.api.dependencies import ReadSessionDep, SessionDep
from {{ cookiecutter.package_name }}.api.fields import ApiKey
from {{ cookiecutter.package_name }}.api.pages import Page, PageParamsDep, page_of
from {{ cookiecutter.package_name }}.api.preconditions import IfMatch, require_match, with_etag
from {{ cookiecutter.package_name }}.api.responses import (
    BY_KEY,
    CONDITIONAL_WRITE,
    ETAG,
    QUERIES,
    REQUIRED_CONDITION,
    WITH_BODY,
    answer_headers,
)
from {{ cookiecutter.package_name }}.db.base import Key
from {{ cookiecutter.package_name }}.features.blog.api.schemas import PostCreate, PostRead, PostUpdate
from {{ cookiecutter.package_name }}.features.blog.repositories import PostRepository
from {{ cookiecutter.package_name }}.features.idempotency.api.dependencies import REPLAYED, IdempotencyDep

router = APIRouter(prefix="/posts", tags=["posts"], responses=QUERIES)


async def post_as_shown(posts: PostRepository, key: Key) -> PostRead:
    """The post as the routes answer it, its author loaded in the same query; 404 if none."""
    return PostRead.model_validate(await posts.get_with_author(key))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={**WITH_BODY, **answer_headers(201, {**ETAG, **REPLAYED})},
)
async def create_post(
    body: PostCreate, session: SessionDep, idempotency: IdempotencyDep, response: Response
) -> PostRead:
    await idempotency.claim(session, body)
    posts = PostRepository(session)
    created = await posts.create(**body.model_dump())
    post = await post_as_shown(posts, created.id)
    with_etag(response, post.version)
    await idempotency.record(session, post, status.HTTP_201_CREATED, response.headers)
    return post


@router.get("")
async def list_posts(
    session: ReadSessionDep, page: PageParamsDep, author_id: ApiKey | None = None
) -> Page[PostRead]:
    posts = await PostRepository(session).list_with_authors(
        limit=page.limit, after=page.after, author_id=author_id
    )
    return page_of(posts, page.limit, PostRead)


@router.get("/{post_id}", responses={**BY_KEY, **answer_headers(200, ETAG)})
async def get_post(post_id: ApiKey, session: ReadSessionDep, response: Response) -> PostRead:
    post = await post_as_shown(PostRepository(session), post_id)
    with_etag(response, post.version)
    return post


# If-Match is required: two editors of one post must not overwrite each other.
@router.patch(
    "/{post_id}",
    responses={**BY_KEY, **WITH_BODY, **REQUIRED_CONDITION, **answer_headers(200, ETAG)},
)
async def update_post(
    post_id: ApiKey,
    body: PostUpdate,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> PostRead:
    posts = PostRepository(session)
    post = await posts.get_with_author(post_id)
    require_match(if_match, post.version, "post", required=True)
    await posts.update(post, **body.model_dump(exclude_unset=True))
    with_etag(response, post.version)
    return PostRead.model_validate(post)


@router.delete(
    "/{post_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**BY_KEY, **CONDITIONAL_WRITE},
)
async def delete_post(post_id: ApiKey, session: SessionDep, if_match: IfMatch = None) -> None:
    posts = PostRepository(session)
    post = await posts.get_or_raise(post_id)
    require_match(if_match, post.version, "post", required=False)
    await posts.delete(post)
