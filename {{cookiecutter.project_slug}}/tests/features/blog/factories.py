"""Users and posts for tests: emails unique among every user a run makes, posts by a new
author unless given one."""

import itertools
from typing import Any

from polyfactory import Use

from {{ cookiecutter.package_name }}.features.blog.models import Post, User
from tests.factories import TableFactory

# Unique ignoring case (the users' index on lower(email)), whatever else a test makes.
EMAIL_NUMBERS = itertools.count(1)
fake = TableFactory.__faker__


class UserFactory(TableFactory[User]):
    email = Use(lambda: f"user-{next(EMAIL_NUMBERS)}@example.com")
    name = Use(fake.name)


class PostFactory(TableFactory[Post]):
    title = Use(fake.sentence, nb_words=4)
    content = Use(fake.paragraph)

    @classmethod
    def process_kwargs(cls, **kwargs: Any) -> dict[str, Any]:
        if "author" not in kwargs and "author_id" not in kwargs:
            kwargs["author"] = UserFactory.build()
        return super().process_kwargs(**kwargs)
