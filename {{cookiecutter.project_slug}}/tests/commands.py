"""The CLI and code that runs an event loop of its own (asyncio.run), each in a thread of
its own: in the tests' thread, asyncio.run would end the loop the async tests share."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from {{ cookiecutter.package_name }} import cli
from {{ cookiecutter.package_name }}.settings import get_settings


def in_a_thread(call: Callable[[], object]) -> object:
    """What `call` returns, or raises, having run in a thread of its own."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(call).result()


def run_cli(*argv: str) -> int:
    """The command's exit code, the settings read afresh from the environment."""
    get_settings.cache_clear()
    try:
        code = in_a_thread(lambda: cli.main(list(argv)))
    finally:
        get_settings.cache_clear()
    assert isinstance(code, int)
    return code
