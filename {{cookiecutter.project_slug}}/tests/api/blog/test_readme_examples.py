"""The README's curl examples work as written against the service, whatever its key type.

Each command of the README's example block is sent through the test client, which
checks requests and answers against the OpenAPI document; a variable the block sets
from an answer (`ada=$(curl ... | python3 -c ...)`) is set by running that pipe.
"""

import asyncio
import re
import shlex
import sys
from asyncio.subprocess import PIPE

import httpx

from {{ cookiecutter.package_name }}.db.migrations import PROJECT_ROOT

SERVICE = "localhost:8000"
# `name=$(command)`: a variable set from what the command prints.
ASSIGNMENT = re.compile(r"^(\w+)=\$\((.*)\)$", re.DOTALL)


def example_commands() -> list[str]:
    """The curl commands of the README's bash block that creates a user, one per line."""
    blocks = (PROJECT_ROOT / "README.md").read_text().split("```bash\n")[1:]
    (block,) = [block.split("```")[0] for block in blocks if f"{SERVICE}/users" in block]
    joined = block.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if "curl " in line]


async def send(client: httpx.AsyncClient, words: list[str]) -> httpx.Response:
    """What the service answers to the curl command `words`."""
    method = words[words.index("-X") + 1] if "-X" in words else "GET"
    (url,) = [word for word in words if word.startswith(SERVICE)]
    headers = {"content-type": "application/json"} if "-d" in words else {}
    body = words[words.index("-d") + 1] if "-d" in words else None
    return await client.request(method, url.removeprefix(SERVICE), content=body, headers=headers)


async def piped(program: list[str], text: str) -> str:
    """What `program` prints given `text` on its standard input."""
    process = await asyncio.create_subprocess_exec(*program, stdin=PIPE, stdout=PIPE, stderr=PIPE)
    printed, complaint = await process.communicate(text.encode())
    assert process.returncode == 0, complaint.decode()
    return printed.decode().strip()


async def test_the_readme_examples_work_as_written(client: httpx.AsyncClient) -> None:
    variables: dict[str, str] = {}
    commands = example_commands()
    assert any(" -d " in command for command in commands), commands
    for command in commands:
        assignment = ASSIGNMENT.match(command)
        line = assignment[2] if assignment else command
        for name, value in variables.items():
            line = line.replace(f'"${name}"', shlex.quote(value))
        words = shlex.split(line, comments=True)
        pipe = words[words.index("|") + 1 :] if "|" in words else []
        response = await send(client, words[: len(words) - len(pipe) - bool(pipe)])
        assert response.is_success, f"{command}\n{response.status_code} {response.text}"
        if assignment:
            program = [sys.executable if pipe[0] == "python3" else pipe[0], *pipe[1:]]
            variables[assignment[1]] = await piped(program, response.text)
    assert variables, "the example block sets no variable from an answer"
